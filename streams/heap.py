"""Keep Python's cyclic garbage collector out of live latency.

A full (oldest-generation) collection walks every container object alive; in a
fresh worker that took about 190 ms every 10 s or so, holding the event loop, and
it showed as the slowest publish-to-visible latencies (docs/performance.md). After
start-up and each rebalance, :func:`settle` collects once and then freezes every
surviving object (``gc.freeze``): later collections only look at objects created
since. Unfreezing first lets the collection free cycles among objects frozen at the
previous settle, so repeated rebalances leak nothing; objects without cycles are
freed by reference counting as always.
"""

from __future__ import annotations

import gc
import time

import structlog

log = structlog.get_logger(__name__)


def settle() -> None:
    """Collect all cyclic garbage once, then freeze every survivor out of later collections."""
    started = time.monotonic()
    gc.unfreeze()
    freed = gc.collect()
    gc.freeze()
    log.info(
        "heap_settled",
        freed=freed,
        frozen=gc.get_freeze_count(),
        ms=round((time.monotonic() - started) * 1000, 1),
    )
