"""Remembered event ids, so that a repeated event is answered "duplicate".

A courtesy, not the guarantee: the stream de-duplicates by ``event_id`` too, and
that is what makes counts exact. This store only spares callers and Kafka the
repeats it has seen: ids are remembered per event type once Kafka acknowledged
them, for ``dedup_days`` (at least 30), in SQLite; older rows are pruned, so the
store is bounded by age. If the store fails, events are still published and
answered "accepted" (the stream still counts them once).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

import structlog

log = structlog.get_logger(__name__)

Key = tuple[str, str]  # (event type, event_id)
PRUNE_EVERY_S: Final = 3600.0
_CHUNK: Final = 400  # pairs per query (two SQL parameters each)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    first_seen REAL NOT NULL,
    PRIMARY KEY (type, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_time ON seen (first_seen);
"""


class DedupStore:
    """(type, event_id) pairs accepted in the last ``retention_s`` seconds.

    Thread-safe; the SQLite file is opened on first use. ``path`` ``None`` keeps
    the store in memory (tests, OpenAPI generation).
    """

    def __init__(
        self,
        path: Path | None,
        retention_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._retention_s = retention_s
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._last_prune = float("-inf")

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self._path is None:
                target = ":memory:"
            else:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                target = str(self._path)
            db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def seen(self, keys: Sequence[Key]) -> set[Key]:
        """The keys among ``keys`` accepted within the retention period."""
        found: set[Key] = set()
        cutoff = self._clock() - self._retention_s
        with self._lock:
            db = self._conn()
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                values = ",".join("(?,?)" for _ in chunk)
                params: list[object] = [part for key in chunk for part in key]
                rows = db.execute(
                    "SELECT type, event_id FROM seen "  # noqa: S608 - placeholders only
                    f"WHERE (type, event_id) IN (VALUES {values}) AND first_seen >= ?",
                    [*params, cutoff],
                )
                found.update((str(t), str(e)) for t, e in rows)
        return found

    def remember(self, keys: Iterable[Key]) -> None:
        """Record keys Kafka acknowledged (first sight wins); prune old rows hourly."""
        now = self._clock()
        rows = [(t, e, now) for t, e in keys]
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                # A row past retention is refreshed: a re-send after expiry starts a new period.
                db.executemany(
                    "INSERT INTO seen (type, event_id, first_seen) VALUES (?, ?, ?) "
                    "ON CONFLICT (type, event_id) DO UPDATE SET first_seen = excluded.first_seen "
                    "WHERE seen.first_seen < ?",
                    [(*row, now - self._retention_s) for row in rows],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if now - self._last_prune >= PRUNE_EVERY_S:
                self._prune_locked(now)

    def prune(self) -> int:
        """Delete rows past retention; return how many."""
        with self._lock:
            return self._prune_locked(self._clock())

    def _prune_locked(self, now: float) -> int:
        self._last_prune = now
        cur = self._conn().execute(
            "DELETE FROM seen WHERE first_seen < ?", (now - self._retention_s,)
        )
        if cur.rowcount:
            log.info("dedup_pruned", rows=cur.rowcount)
        return cur.rowcount

    def __len__(self) -> int:
        with self._lock:
            row = self._conn().execute("SELECT count(*) FROM seen").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
