"""A stand-in for aiokafka's consumer as streams/fetch_positions.py reads it: each
assigned partition's position, and ``seek``. For unit tests only; the integration tests
use aiokafka itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.structs import TopicPartition
from faust.types import TP


class State:
    """A partition's state: its position (None while it awaits a reset)."""

    def __init__(self, position: int | None) -> None:
        self._position = position


class Assignment:
    """The partitions assigned, by aiokafka's ``TopicPartition``."""

    def __init__(self) -> None:
        self.states: dict[TopicPartition, State] = {}

    def state_value(self, tp: TopicPartition) -> State | None:
        return self.states.get(tp)


class Subscription:
    def __init__(self, assignment: Assignment) -> None:
        self.assignment = assignment


class SubscriptionState:
    def __init__(self, assignment: Assignment) -> None:
        self.subscription = Subscription(assignment)


class FakeAIOKafkaConsumer:
    """Positions per partition, ``seek``, and what ``getmany`` does to positions."""

    def __init__(self, positions: Mapping[TP, int | None] | None = None) -> None:
        self.assignment = Assignment()
        self._subscription = SubscriptionState(self.assignment)
        self.sought: list[tuple[TP, int]] = []
        for tp, position in (positions or {}).items():
            self.assign(tp, position)

    def assign(self, tp: TP, position: int | None = None) -> None:
        self.assignment.states[TopicPartition(tp.topic, tp.partition)] = State(position)

    def position(self, tp: TP) -> int | None:
        state = self.assignment.state_value(TopicPartition(tp.topic, tp.partition))
        return None if state is None else state._position

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought.append((TP(tp.topic, tp.partition), offset))
        self.assignment.states[tp]._position = offset

    def drained(self, records: Mapping[TP, Sequence[Any]]) -> None:
        """What ``getmany`` does: each partition's position moves past its records."""
        for tp, recs in records.items():
            key = TopicPartition(tp.topic, tp.partition)
            if key not in self.assignment.states:
                self.assign(tp)
            if recs:
                self.assignment.states[key]._position = recs[-1].offset + 1
