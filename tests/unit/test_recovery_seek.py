"""streams/recovery_seek.py: Faust's recovery never seeks to a negative offset."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from faust.tables.recovery import Recovery
from faust.types import TP

from streams import recovery_seek


class Consumer:
    """Records the offsets recovery seeks to."""

    def __init__(self) -> None:
        self.sought: dict[Any, int] = {}

    async def seek_wait(self, partitions: dict[Any, int]) -> None:
        self.sought.update(partitions)


def test_missing_or_negative_start_offsets_read_from_the_beginning() -> None:
    recovery_seek.install()
    recovery_seek.install()  # idempotent
    a, b, c, d, e, other = (TP("t-changelog", p) for p in range(6))
    consumer = Consumer()
    # Faust's Counter holds None for partitions without a known offset
    # (Recovery._add: offsets.setdefault(tp, None)), also for ones not sought now.
    offsets: Counter[Any] = Counter({a: -2, b: -1, c: 0, d: 41, other: 7})
    offsets[e] = None  # type: ignore[assignment]
    offsets.setdefault(TP("t-changelog", 9), None)  # type: ignore[arg-type]
    asyncio.run(Recovery._seek_offsets(None, consumer, {a, b, c, d, e}, offsets, "standby"))
    assert consumer.sought == {a: 0, b: 0, c: 0, d: 41, e: 0}
    assert offsets[e] is None  # Faust's own bookkeeping is left as it was
