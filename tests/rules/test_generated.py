"""The generated rule files are current, and the thresholds are Poisson-sound."""

from __future__ import annotations

import math

import pytest

from alerts_eval.params import LEVELS, WINDOWS, YEAR_SECONDS
from alerts_eval.rulegen import generated_files


@pytest.mark.parametrize("path", list(generated_files()), ids=lambda p: p.name)
def test_generated_rules_are_current(path) -> None:
    expected = generated_files()[path]
    assert path.read_text(encoding="utf-8") == expected, (
        f"{path} is stale: run `python -m alerts_eval generate-rules`"
    )


def _tail(k: int, lam: float) -> float:
    """P(N >= k) for N ~ Poisson(lam)."""
    return 1.0 - sum(math.exp(-lam) * lam**j / math.factorial(j) for j in range(k))


def test_thresholds_are_far_in_the_poisson_tail() -> None:
    """At the configured rate (1500/year), every warning threshold is a tail event."""
    for level in LEVELS:
        rate = 1500.0 if level.name == "force" else 500.0
        for window in WINDOWS:
            lam = rate * window.seconds / YEAR_SECONDS
            k = window.threshold(lam, "warning", level.z_offset)
            assert _tail(k, lam) < 1e-3, (level.name, window.name, k, lam)
            assert window.threshold(lam, "critical", level.z_offset) > k


def test_five_in_an_hour_is_a_warning_at_the_county_rate() -> None:
    one_hour = WINDOWS[0]
    assert one_hour.name == "1h"
    for rate in (1500.0, 500.0):
        assert one_hour.threshold(rate * 3600 / YEAR_SECONDS, "warning") == 5
