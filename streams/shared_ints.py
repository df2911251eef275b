"""One int object per bucket number, shared by every structure that holds it.

A Python int above 256 is an object of its own (32 bytes). The counts table and the
view hold about a million bucket numbers after a replay of a million events, but only
a few thousand distinct ones (the hours of 30 days, the days of a few years, the
minutes of two hours): sharing them saves about 32 bytes a key in each
(docs/performance.md, change 13).
"""

from __future__ import annotations

from typing import Final

LIMIT: Final = 200_000  # distinct numbers kept; then the table starts again (bounded memory)

_table: dict[int, int] = {}


def table() -> dict[int, int]:
    """The shared objects by number, for callers that look up before calling :func:`shared`.

    Always the same dict (cleared, never replaced, when full).
    """
    return _table


def shared(n: int) -> int:
    """An int equal to ``n``: the same object for every call with the same number."""
    found = _table.get(n)
    if found is not None:
        return found
    if len(_table) >= LIMIT:
        _table.clear()  # objects already shared stay shared; new ones start a new table
    _table[n] = n
    return n
