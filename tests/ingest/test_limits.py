"""The per-source token bucket."""

from __future__ import annotations

import pytest

from services.ingest.limits import RateLimiter, TokenBucket


def test_bucket_refills_at_its_rate_up_to_capacity() -> None:
    bucket = TokenBucket(rate=10, capacity=100, tokens=100, updated=0)
    assert bucket.take(100, now=0) == 0
    assert bucket.take(1, now=0) == pytest.approx(0.1)
    assert bucket.take(50, now=5) == 0  # 50 refilled
    assert bucket.take(1, now=1000) == 0
    assert bucket.tokens == 99  # capped at capacity before taking


def test_a_refused_request_costs_nothing() -> None:
    bucket = TokenBucket(rate=1, capacity=10, tokens=5, updated=0)
    assert bucket.take(6, now=0) == pytest.approx(1)
    assert bucket.take(5, now=0) == 0


def test_limiter_answers_whole_seconds_per_source() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=100, burst=500, clock=lambda: now[0])
    assert limiter.take("a", 500) == 0
    assert limiter.take("a", 1) == 1  # 0.01 s rounds up to 1
    assert limiter.take("a", 450) == 5
    assert limiter.take("b", 500) == 0  # its own bucket
    now[0] = 4.5
    assert limiter.take("a", 450) == 0


def test_source_overrides_rate_and_burst() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=1000, burst=10_000, clock=lambda: now[0])
    assert limiter.take("slow", 600, rate_per_s=2, burst=600) == 0
    assert limiter.take("slow", 20, rate_per_s=2, burst=600) == 10
