"""streams/heap.py: collect once, freeze the survivors, free earlier frozen cycles."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

from streams import heap


class Node:
    """A container that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_settle_collects_cycles_and_freezes_survivors() -> None:
    gc.unfreeze()
    try:
        garbage = cycle()
        kept = Node()
        assert garbage() is not None  # only the cyclic collector can free it
        heap.settle()
        assert garbage() is None
        assert gc.get_freeze_count() > 0
        assert kept not in gc.get_objects(generation=2)  # in the permanent generation
    finally:
        gc.unfreeze()


def test_a_cycle_frozen_by_one_settle_is_freed_by_the_next() -> None:
    gc.unfreeze()
    try:
        a = Node()
        a.other = a
        frozen = weakref.ref(a)
        heap.settle()  # a is alive: frozen
        del a
        gc.collect()
        assert frozen() is not None  # frozen objects are out of reach of gc.collect
        heap.settle()
        assert frozen() is None
    finally:
        gc.unfreeze()


ARENAS_OF_A_THREAD = """
import ctypes, os, sys, threading
from streams import heap
if sys.argv[1] == "one":
    assert heap.one_malloc_arena(environ={})
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
threading.Thread(target=lambda: libc.malloc(64 * 1024)).start()
sys.stderr.flush()
libc.malloc_stats()  # per arena, on file descriptor 2
"""


def arenas_used(mode: str) -> int:
    """How many glibc arenas a process whose second thread allocates has."""
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_OF_A_THREAD, mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    return done.stderr.count("Arena ")


def test_one_malloc_arena_serves_other_threads_from_the_main_arena() -> None:
    assert arenas_used("default") >= 2  # glibc gives the thread an arena of its own
    assert arenas_used("one") == 1


def test_one_malloc_arena_leaves_an_explicit_setting_alone() -> None:
    assert heap.one_malloc_arena(environ={"MALLOC_ARENA_MAX": "4"}) is False


def test_tune_collector_sets_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        heap.tune_collector()
        assert gc.get_threshold() == heap.GC_THRESHOLDS
        assert heap.GC_THRESHOLDS[0] > before[0]  # fewer young collections than the default
    finally:
        gc.set_threshold(*before)
