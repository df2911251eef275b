"""What each event type counts, under which labels: the contract's metric families."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from opsmetrics.settings import Force
from services.contract.events import ORIGINS, REFERRERS, RISKS, EventType
from services.simulator import SimEvent as AnyEvent


@dataclass(frozen=True)
class Family:
    """One counted measure: its metric names, labels and one-letter code in table keys."""

    type: EventType
    code: str
    counter: str  # without the _total suffix
    window_gauge: str
    help: str
    labels: tuple[str, ...]
    extra_values: tuple[tuple[str, ...], ...]  # allowed values of labels after division


FAMILIES: Final[tuple[Family, ...]] = (
    Family(
        EventType.WARRANT,
        "w",
        "ops_warrants_executed",
        "ops_warrants_executed_window",
        "Warrants executed, by event time",
        ("force", "division", "origin"),
        (ORIGINS,),
    ),
    Family(
        EventType.ARREST,
        "a",
        "ops_arrests",
        "ops_arrests_window",
        "People arrested, by event time",
        ("force", "division", "origin", "previously_known"),
        (ORIGINS, ("false", "true")),
    ),
    Family(
        EventType.SAFEGUARDING,
        "s",
        "ops_children_safeguarded",
        "ops_children_safeguarded_window",
        "Children safeguarded, by event time",
        ("force", "division"),
        (),
    ),
    Family(
        EventType.REFERRAL,
        "r",
        "ops_referrals_received",
        "ops_referrals_received_window",
        "Referrals received, by event time",
        ("force", "division", "referrer", "risk"),
        (REFERRERS, RISKS),
    ),
)
BY_TYPE: Final = {f.type: f for f in FAMILIES}
BY_CODE: Final = {f.code: f for f in FAMILIES}


def label_values(event: AnyEvent) -> tuple[str, ...]:
    """The label values of an event, in the family's label order (all from enumerations)."""
    if event.type == "warrant.executed":
        return (event.force, event.division, event.origin)
    if event.type == "arrest.made":
        known = "true" if event.previously_known else "false"
        return (event.force, event.division, event.origin, known)
    if event.type == "safeguarding.action":
        return (event.force, event.division)
    return (event.force, event.division, event.referrer, event.risk)


def units(event: AnyEvent) -> int:
    """What one event adds to its counter: people arrested, children, or 1."""
    if event.type == "arrest.made":
        return event.persons
    if event.type == "safeguarding.action":
        return event.children
    return 1


def all_label_sets(family: Family, forces: Mapping[str, Force]) -> Iterator[tuple[str, ...]]:
    """Every configured label combination of a family (exported at 0 from the start)."""
    for force_slug in sorted(forces):
        for division in forces[force_slug].divisions:
            for rest in itertools.product(*family.extra_values):
                yield (force_slug, division, *rest)


def join(values: Sequence[str]) -> str:
    """Label values as one key field (slugs and enumerations never contain ',')."""
    return ",".join(values)
