"""streams/fetch_positions.py: records a fetch handed out and nobody applied are read again.

A stand-in for aiokafka's consumer (tests/unit/fake_aiokafka.py);
tests/integration/test_fetch_positions.py runs the same against aiokafka and the real
broker, and test_changelog_restore.py and test_drain.py check what the restore and the
drain tell it.
"""

from __future__ import annotations

from typing import NamedTuple

from aiokafka.structs import TopicPartition
from faust.types import TP

from streams.fetch_positions import Outstanding
from tests.unit.fake_aiokafka import FakeAIOKafkaConsumer

A0, A1 = TP("a", 0), TP("a", 1)


class Rec(NamedTuple):
    offset: int


def Consumer(**positions: int | None) -> FakeAIOKafkaConsumer:
    return FakeAIOKafkaConsumer({TP("a", int(n[1:])): p for n, p in positions.items()})


def fetch(
    consumer: FakeAIOKafkaConsumer, outstanding: Outstanding, **ranges: range
) -> dict[TP, list[Rec]]:
    """A fetch of the given offsets: positions move past them, the thread notes them."""
    records = {TP("a", int(name[1:])): [Rec(o) for o in offs] for name, offs in ranges.items()}
    consumer.drained(records)
    outstanding.handed_out(records, consumer)
    return records


def test_records_nobody_applied_are_sought_again_before_the_next_fetch() -> None:
    consumer, outstanding = Consumer(a0=0, a1=5), Outstanding()
    fetch(consumer, outstanding, a0=range(0, 27), a1=range(5, 9))
    assert outstanding.pending() == {A0: 0, A1: 5}
    assert outstanding.rewind(consumer) == {A0: 0, A1: 5}
    assert consumer.sought == [(A0, 0), (A1, 5)]
    assert outstanding.pending() == {}
    assert outstanding.rewind(consumer) == {}  # given back once


def test_applied_records_are_not_read_again_and_a_partial_apply_resumes_after_it() -> None:
    consumer, outstanding = Consumer(a0=0, a1=5), Outstanding()
    fetch(consumer, outstanding, a0=range(0, 27), a1=range(5, 9))
    outstanding.applied(A0, 26)  # all of a0
    outstanding.applied(A1, 6)  # a1 up to 6: 7 and 8 were not applied
    outstanding.applied(A1, 3)  # an older offset changes nothing
    assert outstanding.pending() == {A1: 7}
    assert outstanding.rewind(consumer) == {A1: 7}
    assert consumer.sought == [(A1, 7)]


def test_a_partition_sought_since_the_fetch_keeps_that_seek() -> None:
    consumer, outstanding = Consumer(a0=24, a1=0), Outstanding()
    fetch(consumer, outstanding, a0=range(24, 27), a1=range(0, 3))
    assert not outstanding.moved(A0)
    consumer.seek(TopicPartition("a", 0), 0)  # recovery's seek after the fetch returned
    consumer.sought.clear()
    assert outstanding.moved(A0)
    assert not outstanding.moved(A1)
    assert outstanding.rewind(consumer) == {A1: 0}
    assert consumer.sought == [(A1, 0)]  # a0 stays where recovery put it


def test_a_partition_no_longer_assigned_is_not_sought() -> None:
    consumer, outstanding = Consumer(a0=0), Outstanding()
    fetch(consumer, outstanding, a0=range(0, 3))
    consumer.assignment.states.clear()  # revoked
    assert outstanding.moved(A0)
    assert outstanding.rewind(consumer) == {}
    assert consumer.sought == []


def test_nothing_noted_means_nothing_moved_or_sought() -> None:
    consumer, outstanding = Consumer(a0=0), Outstanding()
    outstanding.handed_out({}, consumer)
    outstanding.applied(A0, 10)
    assert not outstanding.moved(A0)
    assert outstanding.rewind(consumer) == {}
