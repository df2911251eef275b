"""Simulated referral streams with daily and weekly seasonality, and surges.

Times are seconds from the start of a chunk, which starts on a Monday at 00:00.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts_eval.params import YEAR_SECONDS

FloatArray = npt.NDArray[np.float64]
HOUR = 3_600
DAY = 86_400

DAILY_AMPLITUDE = 0.5
"""Referrals peak at 13:00 at 1.5x the mean and bottom out at 01:00 at 0.5x."""
WEEKDAY_FACTOR = 1.12
WEEKEND_FACTOR = 0.70
PEAK_FACTOR = (1 + DAILY_AMPLITUDE) * WEEKDAY_FACTOR


def seasonality(t: FloatArray) -> FloatArray:
    """Relative rate at times ``t`` (mean 1 over a week)."""
    hour = (t % DAY) / HOUR
    weekday = (t // DAY) % 7
    daily = 1 + DAILY_AMPLITUDE * np.cos(2 * np.pi * (hour - 13) / 24)
    weekly = np.where(weekday < 5, WEEKDAY_FACTOR, WEEKEND_FACTOR)
    return np.asarray(daily * weekly, dtype=np.float64)


def poisson_times(
    rng: np.random.Generator, per_year: float, start: float, end: float
) -> FloatArray:
    """Event times of a seasonal Poisson process on ``[start, end)`` (thinning)."""
    peak = per_year / YEAR_SECONDS * PEAK_FACTOR
    n = int(rng.poisson(peak * (end - start)))
    t = rng.uniform(start, end, n)
    keep = rng.uniform(0.0, 1.0, n) < seasonality(t) * (per_year / YEAR_SECONDS) / peak
    return np.sort(t[keep])


@dataclass(frozen=True)
class Surge:
    """An injected surge: extra referrals at ``(multiplier - 1)`` times the rate,
    or a fixed number of extra referrals spread uniformly over ``seconds``."""

    name: str
    seconds: int
    multiplier: float = 1.0
    extra: int = 0
    description: str = ""

    def times(self, rng: np.random.Generator, per_year: float, start: float) -> FloatArray:
        """Times of the extra referrals for a surge starting at ``start``."""
        end = start + self.seconds
        if self.extra:
            return np.sort(rng.uniform(start, end, self.extra))
        return poisson_times(rng, per_year * (self.multiplier - 1), start, end)


SURGES: tuple[Surge, ...] = (
    Surge("plus5_1h", HOUR, extra=5, description="+5 referrals within one hour"),
    Surge("triple_3d", 3 * DAY, multiplier=3, description="triple the rate for 3 days"),
    Surge("double_7d", 7 * DAY, multiplier=2, description="double the rate for 7 days"),
    Surge("triple_6h", 6 * HOUR, multiplier=3, description="triple the rate for 6 hours"),
)
