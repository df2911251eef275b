"""Records a fetch handed out but nobody applied are read again, not skipped.

aiokafka moves a partition's position past its records as ``getmany`` returns them, in
the consumer's thread. Faust's loop, and :mod:`streams.drain` and
:mod:`streams.changelog_restore` after it, may then apply none of them: the flow
stopped for a rebalance, the consumer generation changed, the partition was paused, or
the task awaiting the fetch was cancelled when a rebalance stopped the fetcher. Faust
counts on a seek to read them again: the rebalance's seek to the committed offsets for
source partitions, recovery's seek for changelog partitions. Neither comes when the
records were returned *after* that seek. Seen in tests/reliability/test_rebalance.py
(docs/reliability.md): a ``getmany`` called in generation 3 waited through the
rebalance, returned the standby changelog records that recovery had just sought to
offset 0 for generation 4, and the stopped flow dropped them; those partitions' positions
were at their ends, so recovery waited for them for ever.

:class:`Outstanding` closes that gap. The consumer's thread notes, for each partition of
a fetch, its first and last offsets and the position the fetch left
(:meth:`Outstanding.handed_out`, right after ``getmany`` returns, with no await in
between). The main thread says how far it applied each partition
(:meth:`Outstanding.applied`); what it never reaches stays noted. Before the next fetch
the thread seeks each noted partition whose position has not moved since back to its
first unapplied offset (:meth:`Outstanding.rewind`). A partition something else sought
meanwhile is left where that seek put it: that seek decides what is read next.

The changelog restore also asks :meth:`Outstanding.moved` before applying a partition's
records: records fetched before a seek and handled after it are stale (standby records
applied as active ones, a read offset set past the records the seek reads again); the
seek reads what matters again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import structlog
from aiokafka.structs import TopicPartition
from faust.types import TP

log = structlog.get_logger(__name__)


class _Open(NamedTuple):
    first: int  # first offset not applied yet
    last: int  # the fetch's last offset of the partition
    after: int | None  # the position the fetch left


class Outstanding:
    """A fetch's records not yet applied, per partition (see the module doc)."""

    def __init__(self) -> None:
        self._open: dict[TP, _Open] = {}
        self._consumer: Any = None  # aiokafka's consumer, owned by the consumer's thread

    def handed_out(self, records: Mapping[TP, Sequence[Any]], consumer: Any) -> None:
        """Note a fetch's records (the consumer's thread, right after ``getmany``)."""
        self._consumer = consumer
        for tp, recs in records.items():
            if recs:
                self._open[tp] = _Open(recs[0].offset, recs[-1].offset, _position(consumer, tp))

    def applied(self, tp: TP, offset: int) -> None:
        """The main thread applied (or deliberately dropped) ``tp``'s records to ``offset``."""
        entry = self._open.get(tp)
        if entry is None or offset < entry.first:
            return
        if offset >= entry.last:
            del self._open[tp]
        else:
            self._open[tp] = entry._replace(first=offset + 1)

    def moved(self, tp: TP) -> bool:
        """Whether ``tp``'s position changed since the fetch that returned its records.

        Read from the main thread without a lock: a seek running in the consumer's
        thread at this very moment can still be missed.
        """
        entry = self._open.get(tp)
        return entry is not None and _position(self._consumer, tp) != entry.after

    def rewind(self, consumer: Any) -> dict[TP, int]:
        """Seek back each noted partition not moved since its fetch (the consumer's thread).

        Returns the partitions sought and their offsets.
        """
        rewound: dict[TP, int] = {}
        for tp, entry in self._open.items():
            after = _position(consumer, tp)
            if after is not None and after == entry.after:
                consumer.seek(TopicPartition(tp.topic, tp.partition), entry.first)
                rewound[tp] = entry.first
        self._open.clear()
        return rewound

    def pending(self) -> dict[TP, int]:
        """Each noted partition's first offset not applied (for tests and diagnosis)."""
        return {tp: entry.first for tp, entry in self._open.items()}


def of(consumer: Any) -> Outstanding:
    """The :class:`Outstanding` of a Faust consumer's thread (``fetch_wait.ConsumerThread``)."""
    outstanding: Outstanding = consumer._thread.outstanding
    return outstanding


def assignment(consumer: Any) -> Any:
    """aiokafka's current assignment of ``consumer`` (per-partition states), or None."""
    subscription = getattr(getattr(consumer, "_subscription", None), "subscription", None)
    return getattr(subscription, "assignment", None)


def _position(consumer: Any, tp: TP) -> int | None:
    """aiokafka's position of ``tp`` (None when unassigned or awaiting a reset)."""
    current = assignment(consumer)
    if current is None:
        return None
    state = current.state_value(TopicPartition(tp.topic, tp.partition))
    return None if state is None else state._position


def log_rewound(rewound: Mapping[TP, int]) -> None:
    """Log the partitions :meth:`Outstanding.rewind` sought back, if any."""
    if rewound:
        log.info(
            "fetch_given_back",
            partitions={f"{tp.topic}:{tp.partition}": first for tp, first in rewound.items()},
        )
