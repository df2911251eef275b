"""DelayHistogram exports what prometheus_client's Histogram exports for the same values."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streams.app import DELAY_BUCKETS
from streams.delays import DelayHistogram

TYPES = ("referral.received", "arrest.made", "warrant.executed")


def _without_created(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if "_created" not in line]


def _values(rng: random.Random, n: int) -> list[float]:
    edges = [float(b) for b in DELAY_BUCKETS]
    pool = [
        *edges,  # exactly on a bound: counted in that bucket (le)
        *(b + 1e-9 for b in edges),
        0.0,
        -3.5,  # a clock ahead of the broker: counted as 0
        1e12,  # beyond every bound: +Inf only
    ]
    return [
        rng.choice(pool) if rng.random() < 0.3 else rng.uniform(0, 40 * 86400) for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_same_exposition_as_prometheus_histogram(seed: int) -> None:
    rng = random.Random(seed)
    ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
    ours = DelayHistogram("ops_event_delay_seconds", "Delay.", DELAY_BUCKETS)
    ours_registry.register(ours)
    theirs = Histogram(
        "ops_event_delay_seconds",
        "Delay.",
        ["type"],
        buckets=DELAY_BUCKETS,
        registry=theirs_registry,
    )
    for _ in range(20):  # batches of one type at a time, as the worker files them
        type_ = rng.choice(TYPES)
        batch = _values(rng, rng.randrange(1, 300))
        ours.observe(type_, batch)
        for value in batch:
            theirs.labels(type_).observe(max(0.0, value))
    assert _without_created(generate_latest(ours_registry)) == _without_created(
        generate_latest(theirs_registry)
    )


def test_nothing_observed_exports_an_empty_family() -> None:
    registry = CollectorRegistry()
    registry.register(DelayHistogram("ops_event_delay_seconds", "Delay.", DELAY_BUCKETS))
    assert "ops_event_delay_seconds_count" not in generate_latest(registry).decode()


def test_buckets_must_increase() -> None:
    with pytest.raises(ValueError, match="buckets must be increasing"):
        DelayHistogram("d", "Delay.", (1, 0.5))
