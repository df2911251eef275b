"""The referral-spike detector's parameters: one place for rules, docs and eval.

For every window ``W`` the alert compares the count of referrals received in the
last ``W`` with a threshold taken from the upper tail of a Poisson distribution
whose mean ``B`` is the baseline for that window::

    threshold = ceil(B + z * sqrt(B) + c)

``B`` blends the same hours of the previous four weeks with the configured
yearly rate (see :data:`PRIOR_WEEKS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

YEAR_SECONDS = 365 * 86_400
WEEK_SECONDS = 7 * 86_400
HISTORY_WEEKS = 4
PRIOR_WEEKS = 4
"""Weight of the configured yearly rate in the baseline, in weeks of history.

``B = (c1 + c2 + c3 + c4 + PRIOR_WEEKS * mu) / (4 + PRIOR_WEEKS)`` where ``ck`` is
the count in the same window ``k`` weeks earlier and ``mu`` the configured rate
times ``W``. With less than four weeks (plus ``W``) of history ``B = mu``.
"""

ALERT_FOR = "1m"
"""Pending time: ignores one-scrape glitches (e.g. during a rebalance)."""

KEEP_FIRING_FOR = "30m"
"""Keeps a firing alert up through short dips, so one surge is one page."""


@dataclass(frozen=True)
class Window:
    """One detection window and its tail constants for both severities."""

    name: str
    seconds: int
    z_warning: float
    c_warning: float
    z_critical: float
    c_critical: float

    def tail(self, severity: str, z_offset: float = 0.0) -> tuple[float, float]:
        """``(z, c)`` for a severity, with a level's ``z_offset`` (0 stays 0)."""
        z, c = (
            (self.z_warning, self.c_warning)
            if severity == "warning"
            else (self.z_critical, self.c_critical)
        )
        return (z + z_offset if z else 0.0), c

    def threshold(self, baseline: float, severity: str, z_offset: float = 0.0) -> int:
        """The count that fires the alert for a baseline mean (mirrors the PromQL)."""
        z, c = self.tail(severity, z_offset)
        return math.ceil(baseline + z * math.sqrt(baseline) + c)


WINDOWS: tuple[Window, ...] = (
    Window("1h", 3_600, 0.0, 4.0, 0.0, 7.0),
    Window("6h", 6 * 3_600, 6.0, 1.0, 8.0, 1.0),
    Window("24h", 86_400, 4.3, 1.0, 6.3, 1.0),
    Window("3d", 3 * 86_400, 3.8, 1.0, 5.8, 1.0),
    Window("7d", 7 * 86_400, 3.9, 1.0, 5.9, 1.0),
)

SEVERITIES: tuple[str, ...] = ("warning", "critical")


@dataclass(frozen=True)
class Level:
    """An aggregation level: the labels the alert is computed by."""

    name: str
    by: tuple[str, ...]
    z_offset: float = 0.0
    """Added to every ``z``: the division level runs three detectors per force."""


LEVELS: tuple[Level, ...] = (
    Level("force", ("force",)),
    Level("force_division", ("force", "division"), z_offset=1.5),
)

COUNTER = "ops_referrals_received_total"
PARTITION_ACTIVE = "ops_worker_partition_active"
"""1 per source partition a worker exports counts for (see streams/collector.py)."""
SOURCE_PARTITIONS = "ops_source_partitions"
"""Partitions of each contract topic; coverage is exact when each is exported once."""
EXPECTED = "ops_referrals_expected_per_year"
