"""The next source offset of each partition, kept with the counts: no message skipped.

Kafka offsets of a contract topic follow one another, so the counts changelog also
records, for each source partition, the offset of the next message to apply
(``o|<type code>|<partition>`` -> ``[next offset]``, written last in the same
changelog partition as the batch's counts). Faust's committed offset then no longer
decides on its own where counting resumes: a message beyond the recorded next offset
means messages in between were skipped (by a commit that ran ahead of the work, or a
seek that went wrong), so it is held back and the partition is read again from the
recorded offset. Messages before it are replays, which the counter makes exact.

A gap that is real is accepted once it is seen again after reading the partition
again: offsets taken by transaction markers or compaction (a re-read starts at the
same offset again), or messages deleted by retention before they were read (the
partition's earliest offset lies beyond the recorded one). Both are logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streams.counter import Message, TableLike

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages of one partition held back: ``expected`` was due, ``got`` came."""

    topic: str
    partition: int
    expected: int
    got: int


class OffsetGuard:
    """Splits each batch into messages to apply and gaps to read again.

    Per batch: :meth:`split`, then the counter applies the messages, then
    :meth:`advance` queues the next offsets after the batch's counts, then each gap
    goes through :meth:`plan` and the caller seeks where it says.
    """

    def __init__(self, counts: TableLike, topic_codes: dict[str, str]) -> None:
        self.counts = counts
        self.codes = topic_codes
        self._due: dict[TopicPartition, int] = {}  # next offsets of the batch in progress
        self._suspect: dict[TopicPartition, tuple[int, int]] = {}  # gap read again
        self._sought: dict[TopicPartition, tuple[int, float]] = {}  # (offset, when)

    def key(self, topic: str, partition: int) -> str:
        """The counts-table key holding the partition's next offset."""
        return f"o|{self.codes[topic]}|{partition}"

    def expected(self, topic: str, partition: int) -> int | None:
        """The next offset to apply, or None before the partition's first message."""
        value = self.counts.get(self.key(topic, partition))
        return int(value[0]) if value else None

    def split(self, messages: Iterable[Message]) -> tuple[list[Message], list[Gap]]:
        """The messages to apply, in order, and one gap per partition that has one.

        A message beyond its partition's next offset is held back; one at or before
        it is applied (a replay, or the re-read filling the gap in).
        """
        due: dict[TopicPartition, int | None] = {}
        todo: list[Message] = []
        held: dict[TopicPartition, list[int]] = {}
        for msg in messages:
            tp = (msg.topic, msg.partition)
            if tp not in due:
                due[tp] = self.expected(*tp)
            expected = due[tp]
            if expected is not None and msg.offset > expected:
                held.setdefault(tp, []).append(msg.offset)
                continue
            todo.append(msg)
            due[tp] = msg.offset + 1 if expected is None else max(expected, msg.offset + 1)
        gaps: list[Gap] = []
        for tp, offsets in held.items():
            nxt = due[tp]
            assert nxt is not None
            ahead = [o for o in offsets if o >= nxt]  # the rest came again in the re-read
            if ahead:
                gaps.append(Gap(tp[0], tp[1], nxt, min(ahead)))
        self._due = {tp: n for tp, n in due.items() if n is not None}
        for tp in due.keys() - {(g.topic, g.partition) for g in gaps}:
            self._suspect.pop(tp, None)
            self._sought.pop(tp, None)
        return todo, gaps

    def advance(self) -> None:
        """Queue the batch's next offsets (call after the counter wrote the batch)."""
        for (topic, partition), nxt in self._due.items():
            if nxt != self.expected(topic, partition):
                self.counts.put(partition, self.key(topic, partition), [nxt])
        self._due = {}

    def plan(self, gap: Gap, earliest: int, now: float) -> int | None:
        """Where to read ``gap``'s partition from next (None: a re-read is under way).

        ``earliest`` is the partition's first offset still on the broker; ``now`` a
        monotonic clock. Accepting a gap (see the module doc) moves the next offset.
        """
        tp = (gap.topic, gap.partition)
        if self._suspect.get(tp) == (gap.expected, gap.got):
            resume = gap.got  # the same gap after reading again: offsets that hold nothing
        else:
            sought = self._sought.get(tp)
            if sought is not None and sought[0] <= gap.expected and now - sought[1] < 2.0:
                return None  # messages fetched before our seek: the re-read follows them
            self._suspect[tp] = (gap.expected, gap.got)
            resume = max(gap.expected, earliest)
        if resume != gap.expected:
            self.skip_to(gap.topic, gap.partition, resume)
        self._sought[tp] = (resume, now)
        return resume

    def skip_to(self, topic: str, partition: int, offset: int) -> None:
        """Accept that the offsets before ``offset`` will never be applied."""
        self.counts.put(partition, self.key(topic, partition), [offset])

    def reset(self) -> None:
        """Forget gaps under way (after a rebalance every partition is sought anew)."""
        self._suspect.clear()
        self._sought.clear()
