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


def test_negative_start_offsets_read_from_the_beginning() -> None:
    recovery_seek.install()
    recovery_seek.install()  # idempotent
    a, b, c, d = (TP("t-changelog", p) for p in range(4))
    consumer = Consumer()
    offsets = Counter({a: -2, b: -1, c: 0, d: 41})
    asyncio.run(Recovery._seek_offsets(None, consumer, {a, b, c, d}, offsets, "active"))
    assert consumer.sought == {a: 0, b: 0, c: 0, d: 41}
