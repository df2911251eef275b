"""The store of accepted event ids (the courtesy "duplicate" answer)."""

from __future__ import annotations

from pathlib import Path

from services.ingest.dedup import DedupStore

DAY = 86400.0


def test_remembered_keys_are_seen_until_retention_ends(tmp_path: Path) -> None:
    now = [0.0]
    store = DedupStore(tmp_path / "d.sqlite3", 30 * DAY, clock=lambda: now[0])
    a, b = ("arrest.made", "id-000001"), ("referral.received", "id-000001")
    assert store.seen([a, b]) == set()
    store.remember([a])
    assert store.seen([a, b]) == {a}  # the type is part of the key
    now[0] = 30 * DAY - 1
    assert store.seen([a]) == {a}
    now[0] = 30 * DAY + 1
    assert store.seen([a]) == set()
    store.remember([a])  # seen again after expiry: a new period starts
    now[0] = 45 * DAY
    assert store.seen([a]) == {a}
    store.close()


def test_first_sight_wins_within_retention(tmp_path: Path) -> None:
    now = [0.0]
    store = DedupStore(tmp_path / "d.sqlite3", 10.0, clock=lambda: now[0])
    key = ("warrant.executed", "w-00000001")
    store.remember([key])
    now[0] = 8
    store.remember([key])  # does not extend the period
    now[0] = 11
    assert store.seen([key]) == set()


def test_prune_bounds_the_store_by_age(tmp_path: Path) -> None:
    now = [0.0]
    store = DedupStore(tmp_path / "d.sqlite3", 30 * DAY, clock=lambda: now[0])
    store.remember([("arrest.made", f"old-{i:06d}") for i in range(100)])
    now[0] = 20 * DAY
    store.remember([("arrest.made", f"new-{i:06d}") for i in range(10)])
    now[0] = 31 * DAY
    assert store.prune() == 100
    assert len(store) == 10


def test_survives_a_restart_and_handles_large_batches(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "d.sqlite3"
    keys = [("safeguarding.action", f"s-{i:08d}") for i in range(1200)]
    store = DedupStore(path, 30 * DAY)
    store.remember(keys[:700])
    store.close()
    reopened = DedupStore(path, 30 * DAY)
    assert reopened.seen(keys) == set(keys[:700])


def test_in_memory_store() -> None:
    store = DedupStore(None, DAY)
    store.remember([("arrest.made", "m-00000001")])
    assert len(store) == 1
