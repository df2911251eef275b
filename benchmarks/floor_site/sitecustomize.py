"""Loaded by the worker that ``benchmarks/floor.py`` starts (this directory on PYTHONPATH).

With ``BENCH_FLOOR=noop`` the counter's ``handle_batch`` returns a counted outcome per
message and writes nothing; with ``BENCH_FLOOR=classify`` it also classifies each
message. Everything else in the worker (Faust's consumer, the drain, the offset guard,
the outcomes' follow-up and metrics, commits) runs as in production. Nothing counts,
so ``/metrics`` does not account for the messages: the bench times the commits.
"""

from __future__ import annotations

import os
from typing import Any

_MODE = os.environ.get("BENCH_FLOOR", "")

if _MODE in ("noop", "classify"):
    from streams import counter

    def _handle_batch(self: Any, messages: Any) -> list[counter.Outcome]:
        out = []
        for m in messages:
            if _MODE == "classify":
                self.classifier.classify(m.topic, m.value, now=m.stamp)
            out.append(
                counter.Outcome(counter.Result.COUNTED, "referral.received", occurred_at=m.stamp)
            )
        return out

    counter.EventCounter.handle_batch = _handle_batch  # type: ignore[method-assign]
