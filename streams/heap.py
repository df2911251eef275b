"""Keep Python's cyclic garbage collector out of live latency; one malloc arena.

A full (oldest-generation) collection walks every container object alive; in a
fresh worker that took about 190 ms every 10 s or so, holding the event loop, and
it showed as the slowest publish-to-visible latencies (docs/performance.md). After
start-up and each rebalance, :func:`settle` collects once and then freezes every
surviving object (``gc.freeze``): later collections only look at objects created
since. Unfreezing first lets the collection free cycles among objects frozen at the
previous settle, so repeated rebalances leak nothing; objects without cycles are
freed by reference counting as always.

:func:`tune_collector` raises the youngest generation's threshold from 700 to 50,000
container allocations: the counter allocates a few short-lived containers per event
(messages, outcomes, key lists), and collecting every 700 of them cost about a tenth
of its time (docs/performance.md, change 15). Most of them are freed by reference
counting anyway; a young collection only walks the survivors.

:func:`one_malloc_arena` makes glibc serve every thread from its main arena: Faust
reads Kafka in a thread of its own, and the arena glibc gives that thread keeps the
freed fetch buffers (about 29 MB after a 200,000-event replay, docs/performance.md
"Round 3").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import time
from collections.abc import Mapping
from typing import Final

import structlog

log = structlog.get_logger(__name__)

M_ARENA_MAX: Final = -8  # glibc's mallopt parameter (malloc.h)


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


GC_THRESHOLDS: Final = (50_000, 20, 100)  # young, middle, old (Python's default: 700, 10, 10)


def tune_collector() -> None:
    """Collect the youngest generation every 50,000 allocations, not every 700."""
    gc.set_threshold(*GC_THRESHOLDS)


def one_malloc_arena(environ: Mapping[str, str] = os.environ) -> bool:
    """``mallopt(M_ARENA_MAX, 1)``: every thread allocates from glibc's main arena.

    Call it before the worker starts its threads. ``MALLOC_ARENA_MAX`` in the
    environment (glibc's own setting) is left to win. Returns whether the limit was
    set (not on a C library without ``mallopt``).
    """
    if "MALLOC_ARENA_MAX" in environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_ARENA_MAX, 1))
