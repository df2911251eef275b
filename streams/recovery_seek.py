"""Keep Faust's table recovery from seeking a changelog to a negative offset.

faust-streaming's ``Recovery`` keeps a start offset per changelog partition: None
until something is known (``offsets.setdefault(tp, None)``: the memory store persists
no offset), then ``max(last offset read, earliest offset - 1)``, where ``-1`` means
"nothing read yet" and becomes 0 just before the seek. After a rebalance it can seek
standby partitions whose offset is still None; aiokafka's ``seek`` then raises
``ValueError("Offset must be a positive integer")`` and the worker ends (seen in
``tests/periods/test_api.py`` and ``tests/reliability/test_rebalance.py`` when a
worker left the group). :func:`install` reads a None or negative start offset as
``-1``: the partition is read from its beginning, so recovery skips no record and
does not crash. Re-check on every faust-streaming upgrade.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from faust.tables.recovery import Recovery

_ORIGINAL = Recovery._seek_offsets


async def _seek_offsets(
    self: Any, consumer: Any, tps: Any, offsets: Counter[Any], title: str
) -> None:
    """Faust's seek, with a missing (None) or negative start offset read as -1."""
    start = Counter(offsets)
    for tp in tps:
        offset = offsets.get(tp)
        if offset is None or offset < -1:
            start[tp] = -1  # nothing read yet: Faust seeks to 0, the beginning
    await _ORIGINAL(self, consumer, tps, start, title)


def install() -> None:
    """Patch ``Recovery._seek_offsets`` (idempotent)."""
    if Recovery._seek_offsets is not _seek_offsets:
        Recovery._seek_offsets = _seek_offsets  # type: ignore[method-assign]
