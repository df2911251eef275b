"""streams/offsets.py: no message beyond a gap in a partition's offsets is applied."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.counter import DictTable, Message
from streams.offsets import Gap, OffsetGuard

T = "ops.referrals"
STAMP = datetime(2026, 1, 1, tzinfo=UTC)


def msgs(*offsets: int, partition: int = 0) -> list[Message]:
    return [Message(T, partition, o, b"k", b"{}", STAMP) for o in offsets]


def batch(guard: OffsetGuard, *offsets: int) -> tuple[list[int], list[Gap]]:
    todo, gaps = guard.split(msgs(*offsets))
    guard.advance()
    return [m.offset for m in todo], gaps


def make() -> tuple[OffsetGuard, DictTable]:
    table = DictTable()
    return OffsetGuard(table, {T: "r"}), table


def test_contiguous_batches_are_applied_and_the_next_offset_kept() -> None:
    guard, table = make()
    assert batch(guard, 0, 1, 2) == ([0, 1, 2], [])
    assert batch(guard, 3, 4) == ([3, 4], [])
    assert table["o|r|0"] == [5]


def test_replays_are_applied_and_never_move_the_next_offset_back() -> None:
    guard, table = make()
    batch(guard, 0, 1, 2, 3)
    assert batch(guard, 1, 2, 3, 4) == ([1, 2, 3, 4], [])  # replay since the last commit
    assert table["o|r|0"] == [5]


def test_messages_beyond_a_gap_are_held_back_until_it_is_read_again() -> None:
    guard, table = make()
    batch(guard, 0, 1, 2)
    assert batch(guard, 5, 6) == ([], [Gap(T, 0, 3, 5)])
    assert table["o|r|0"] == [3]  # nothing beyond the gap counts as applied
    assert guard.plan(Gap(T, 0, 3, 5), earliest=0, now=0.0) == 3  # read again from 3
    assert batch(guard, 3, 4, 5, 6) == ([3, 4, 5, 6], [])
    assert table["o|r|0"] == [7]


def test_a_re_read_behind_stale_messages_in_one_batch_fills_the_gap() -> None:
    guard, _ = make()
    batch(guard, 0, 1, 2)
    assert batch(guard, 5, 6) == ([], [Gap(T, 0, 3, 5)])
    guard.plan(Gap(T, 0, 3, 5), earliest=0, now=0.0)
    # messages fetched before the seek (7, 8), then the re-read (3 ... 8)
    assert batch(guard, 7, 8, 3, 4, 5, 6, 7, 8) == ([3, 4, 5, 6, 7, 8], [])


def test_stale_messages_after_a_seek_do_not_seek_again() -> None:
    guard, _ = make()
    batch(guard, 0, 1, 2)
    assert guard.plan(Gap(T, 0, 3, 5), earliest=0, now=10.0) == 3
    _, gaps = batch(guard, 7, 8)  # fetched before the seek took effect
    assert gaps == [Gap(T, 0, 3, 7)]
    assert guard.plan(gaps[0], earliest=0, now=10.5) is None
    assert guard.plan(gaps[0], earliest=0, now=13.0) == 3  # no re-read came: seek again


def test_a_gap_that_comes_back_after_reading_again_is_accepted() -> None:
    """Offsets that hold no message (transaction markers, compaction)."""
    guard, table = make()
    batch(guard, 0, 1, 2)
    _, gaps = batch(guard, 4, 5)
    assert guard.plan(gaps[0], earliest=0, now=0.0) == 3
    _, again = batch(guard, 4, 5)  # the re-read starts at 4 again
    assert again == gaps
    assert guard.plan(again[0], earliest=0, now=0.1) == 4
    assert table["o|r|0"] == [4]
    assert batch(guard, 4, 5) == ([4, 5], [])


def test_messages_deleted_before_they_were_read_are_skipped_to_the_earliest() -> None:
    guard, table = make()
    batch(guard, 0, 1, 2)
    assert guard.plan(Gap(T, 0, 3, 50), earliest=40, now=0.0) == 40
    assert table["o|r|0"] == [40]


def test_partitions_are_guarded_apart() -> None:
    guard, table = make()
    todo, gaps = guard.split(msgs(0, 1) + msgs(7, 8, partition=1) + msgs(5, partition=0))
    guard.advance()
    assert [(m.partition, m.offset) for m in todo] == [(0, 0), (0, 1), (1, 7), (1, 8)]
    assert gaps == [Gap(T, 0, 2, 5)]
    assert (table["o|r|0"], table["o|r|1"]) == ([2], [9])  # a first offset is trusted
