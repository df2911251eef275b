"""Keep Faust's table recovery from seeking a changelog to a negative offset.

faust-streaming's ``Recovery`` starts reading each changelog partition at
``max(last offset read, earliest offset - 1)``, where ``-1`` means "nothing read
yet" and becomes 0 just before the seek (its own ``FIXME`` notes the off-by-one).
Any other negative value goes to aiokafka's ``seek``, which raises
``ValueError("Offset must be a positive integer")`` and ends the worker: seen once in
``tests/periods/test_api.py`` when a worker left the group during a rebalance.
:func:`install` makes every negative start offset mean what ``-1`` means (read the
partition from its beginning), so recovery never skips a record and never crashes
on such a value. Re-check on every faust-streaming upgrade.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from faust.tables.recovery import Recovery

_ORIGINAL = Recovery._seek_offsets


async def _seek_offsets(
    self: Any, consumer: Any, tps: Any, offsets: Counter[Any], title: str
) -> None:
    """Faust's seek, with every negative start offset read as -1 (the beginning)."""
    clamped = Counter({tp: max(offset, -1) for tp, offset in offsets.items()})
    await _ORIGINAL(self, consumer, tps, clamped, title)


def install() -> None:
    """Patch ``Recovery._seek_offsets`` (idempotent)."""
    if Recovery._seek_offsets is not _seek_offsets:
        Recovery._seek_offsets = _seek_offsets  # type: ignore[method-assign]
