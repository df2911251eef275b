"""A realistic event simulator: Poisson arrivals with daily and weekly seasonality.

For every force, division, event type and hour, the number of events is drawn
from a Poisson law whose mean is the configured yearly rate shared equally among
divisions and shaped by an hour-of-day and a day-of-week profile (each profile
averages 1, so the yearly expectation is exactly the configured rate). Arrests
carry ``persons`` and safeguarding actions ``children``; the configured rates
count people and children, so event rates are divided by the mean group size.

Everything is deterministic for a given ``seed``; event ids derive from the seed
and the hour, so replaying the same backfill publishes duplicates, which the
stream counts once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np

from opsmetrics.settings import Force
from services.contract.events import (
    REFERRERS,
    RISKS,
    ArrestMade,
    ReferralReceived,
    SafeguardingAction,
    WarrantExecuted,
)

HOURS_PER_YEAR: Final = 365.25 * 24
SOURCE: Final = "simulator"

#: Mean extra people per arrest beyond the first, and extra children per action.
EXTRA_PERSONS: Final = 0.15
EXTRA_CHILDREN: Final = 0.4
MEAN_PERSONS: Final = 1 + EXTRA_PERSONS
MEAN_CHILDREN: Final = 1 + EXTRA_CHILDREN

REFERRER_SHARE: Final = dict(
    zip(REFERRERS, (0.60, 0.02, 0.05, 0.10, 0.10, 0.10, 0.03), strict=True)
)
RISK_SHARE: Final = dict(zip(RISKS, (0.05, 0.20, 0.40, 0.25, 0.10), strict=True))


def _normalised(weights: list[float]) -> np.ndarray:
    arr = np.asarray(weights, dtype=float)
    out: np.ndarray = arr / arr.mean()
    return out


# Hour-of-day profiles (local hours 0..23), each averaging 1.
_OFFICE = _normalised([0.3] * 8 + [1.6] * 9 + [0.6] * 7)
_DAWN_RAIDS = _normalised([0.2] * 6 + [4.0] * 3 + [1.0] * 8 + [0.3] * 7)
# Day-of-week profile (Monday=0), averaging 1: quieter weekends.
_WEEK = _normalised([1.15, 1.15, 1.15, 1.15, 1.1, 0.65, 0.65])

Kind = str  # "warrant" | "arrest" | "safeguarding" | "referral"
KINDS: Final[tuple[Kind, ...]] = ("warrant", "arrest", "safeguarding", "referral")
_HOURLY: Final = {
    "warrant": _DAWN_RAIDS,
    "arrest": _DAWN_RAIDS,
    "safeguarding": _OFFICE,
    "referral": _OFFICE,
}

_HOURLY_MATRIX: Final = np.array([_HOURLY[kind] for kind in KINDS])  # kinds x 24 hours

SimEvent = WarrantExecuted | ArrestMade | SafeguardingAction | ReferralReceived


def events_per_hour(force: Force, kind: Kind, divisions: int) -> float:
    """Mean events an hour in one division, before seasonality."""
    rates = force.rates
    yearly = {
        "warrant": rates.warrants_executed,
        "arrest": rates.arrests / MEAN_PERSONS,
        "safeguarding": rates.children_safeguarded / MEAN_CHILDREN,
        "referral": rates.referrals_received,
    }[kind]
    return yearly / HOURS_PER_YEAR / divisions


@dataclass
class Simulator:
    """Generates contract events for the configured forces."""

    forces: dict[str, Force]
    seed: int = 0
    tz_name: str = "Europe/London"

    def __post_init__(self) -> None:
        self._slots = [
            (slug, division)
            for slug in sorted(self.forces)
            for division in self.forces[slug].divisions
        ]
        self._base = np.array(
            [
                [
                    events_per_hour(self.forces[slug], kind, len(self.forces[slug].divisions))
                    for kind in KINDS
                ]
                for slug, _ in self._slots
            ]
        )

    def generate(self, start: datetime, end: datetime) -> Iterator[SimEvent]:
        """Events with ``start <= occurred_at < end``, in time order."""
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(self.tz_name)
        day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            # One generator per UTC day: any slice of time yields the same events.
            rng = np.random.default_rng([self.seed, int(day.timestamp())])
            hours = [day + timedelta(hours=h) for h in range(24)]
            local = [h.astimezone(tz) for h in hours]
            shape = np.array([_HOURLY_MATRIX[:, t.hour] * _WEEK[t.weekday()] for t in local])
            counts = rng.poisson(self._base[None, :, :] * shape[:, None, :])  # hour x slot x kind
            batch: list[SimEvent] = []
            for h, row, col in zip(*np.nonzero(counts), strict=True):
                force_slug, division = self._slots[row]
                hour = hours[h]
                for n in range(int(counts[h, row, col])):
                    at = hour + timedelta(seconds=float(rng.uniform(0, 3600)))
                    event = self._make(
                        rng,
                        KINDS[col],
                        self.forces[force_slug],
                        force_slug,
                        division,
                        at,
                        f"{int(hour.timestamp())}:{force_slug}:{division}:{n}",
                    )
                    if start <= at < end:
                        batch.append(event)
            yield from sorted(batch, key=lambda e: e.occurred_at)
            day += timedelta(days=1)

    def spike(
        self, force: str, division: str, count: int, start: datetime, over: timedelta
    ) -> list[ReferralReceived]:
        """``count`` extra referrals spread over ``[start, start + over)``."""
        rng = np.random.default_rng([self.seed, int(start.timestamp()), 7])
        out = []
        for n in range(count):
            at = start + timedelta(seconds=float(rng.uniform(0, over.total_seconds())))
            out.append(
                ReferralReceived(
                    version=1,
                    event_id=f"sim:{self.seed}:spike:{int(start.timestamp())}:{force}:{division}:{n}",
                    type="referral.received",
                    occurred_at=at,
                    force=force,
                    division=division,
                    source=SOURCE,
                    referrer="nca",
                    risk=str(rng.choice(RISKS, p=list(RISK_SHARE.values()))),  # type: ignore[arg-type]
                )
            )
        return sorted(out, key=lambda e: e.occurred_at)

    def _make(
        self,
        rng: np.random.Generator,
        kind: Kind,
        force: Force,
        force_slug: str,
        division: str,
        at: datetime,
        suffix: str,
    ) -> SimEvent:
        common = {
            "version": 1,
            "event_id": f"sim:{self.seed}:{kind}:{suffix}",
            "occurred_at": at,
            "force": force_slug,
            "division": division,
            "source": SOURCE,
        }
        origin = "referral" if rng.random() < force.rates.share_from_referrals else "proactive"
        if kind == "warrant":
            return WarrantExecuted(type="warrant.executed", origin=origin, **common)  # type: ignore[arg-type]
        if kind == "arrest":
            return ArrestMade(
                type="arrest.made",
                persons=min(50, 1 + int(rng.poisson(EXTRA_PERSONS))),
                origin=origin,  # type: ignore[arg-type]
                previously_known=bool(rng.random() < force.rates.share_previously_known),
                **common,  # type: ignore[arg-type]
            )
        if kind == "safeguarding":
            return SafeguardingAction(
                type="safeguarding.action",
                children=min(100, 1 + int(rng.poisson(EXTRA_CHILDREN))),
                **common,  # type: ignore[arg-type]
            )
        return ReferralReceived(
            type="referral.received",
            referrer=str(rng.choice(REFERRERS, p=list(REFERRER_SHARE.values()))),  # type: ignore[arg-type]
            risk=str(rng.choice(RISKS, p=list(RISK_SHARE.values()))),  # type: ignore[arg-type]
            **common,  # type: ignore[arg-type]
        )
