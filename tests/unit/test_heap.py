"""streams/heap.py: collect once, freeze the survivors, free earlier frozen cycles."""

from __future__ import annotations

import gc
import weakref

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
