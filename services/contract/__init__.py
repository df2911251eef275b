"""Package (holds modules compiled by opsmetrics/native.py: checked current first)."""

from opsmetrics.native import verify

verify()
