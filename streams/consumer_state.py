"""What the worker's consumer and table recovery hold, logged on ``SIGUSR2``.

For a worker that stops making progress (a recovery that never ends, a partition that
is never read): one log line, ``consumer_state``, with per partition what Faust knows
(active or paused, read offset, committed offset), what aiokafka's fetcher knows in the
consumer's thread (status, position, a buffered fetch and its position) and, for the
tables' changelogs, recovery's offsets and highwaters; and the records fetched but not
applied yet, which the next fetch reads again (:mod:`streams.fetch_positions`). Topic
names, partitions and offsets only: no event content. The tests' diagnosis of a stuck
worker sends the signal (``tests/workers.py``); so can an operator (``kill -USR2
<pid>``). The worker (``streams/worker.py``) answers the signal with it, in place of
mode's default, which would stop the worker's loop in a debugger.

The consumer's thread owns aiokafka's objects; this reads them from the main thread
without a lock, which is good enough for a diagnosis and changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka.structs import TopicPartition
from faust.types import TP

from streams import fetch_positions

log = structlog.get_logger(__name__)


def snapshot(app: Any) -> dict[str, Any]:
    """The consumer's and recovery's state as plain data (see the module doc)."""
    consumer = app.consumer
    recovery = app.tables.recovery
    active = consumer._active_partitions
    out: dict[str, Any] = {
        "generation": app.consumer_generation_id,
        "flow_active": consumer.flow_active,
        "flow_suspended": consumer.suspend_flow.is_set(),
        "flow_control": app.flow_control.is_active(),
        "in_recovery": recovery.in_recovery,
        "unacked": len(consumer._unacked_messages),
        "buffered": _names(consumer._buffered_partitions),
    }
    aio = _aiokafka_consumer(consumer)
    fetcher = getattr(aio, "_fetcher", None)
    assignment = fetch_positions.assignment(aio)
    tps: set[TP] = set(consumer.assignment())
    tps.update(recovery.active_tps, recovery.standby_tps)
    partitions = {}
    for tp in sorted(tps):
        row: dict[str, Any] = {
            "active": active is None or tp in active,
            "paused": tp in consumer._paused_partitions,
            "read": consumer._read_offset.get(tp),
            "committed": consumer._committed_offset.get(tp),
        }
        if tp in recovery.active_tps:
            row["recovery"] = "active"
            row["applied"] = recovery.active_offsets.get(tp)
            row["highwater"] = recovery.active_highwaters.get(tp)
            row["received"] = tp in recovery._active_events_received_at
        elif tp in recovery.standby_tps:
            row["recovery"] = "standby"
            row["applied"] = recovery.standby_offsets.get(tp)
            row["highwater"] = recovery.standby_highwaters.get(tp)
        row.update(_fetch_state(assignment, fetcher, tp))
        partitions[f"{tp.topic}:{tp.partition}"] = row
    out["partitions"] = partitions
    outstanding = getattr(getattr(consumer, "_thread", None), "outstanding", None)
    if isinstance(outstanding, fetch_positions.Outstanding):
        # Records handed out and not applied yet: given back before the next fetch.
        out["not_applied"] = {
            f"{tp.topic}:{tp.partition}": first for tp, first in outstanding.pending().items()
        }
    if fetcher is not None:
        out["fetches_in_flight"] = sorted(getattr(fetcher, "_in_flight", ()))
        out["fetch_tasks"] = [_task(t) for t in getattr(fetcher, "_pending_tasks", ())]
    loop = getattr(getattr(consumer, "_thread", None), "thread_loop", None)
    if loop is not None:
        out["thread_tasks"] = sorted(_task(t) for t in asyncio.all_tasks(loop))
    return out


def log_snapshot(app: Any) -> None:
    """Log :func:`snapshot` as ``consumer_state`` (a failure is logged, never raised)."""
    try:
        state = snapshot(app)
    except Exception as exc:  # noqa: BLE001 - a diagnosis must not take the worker down
        log.warning("consumer_state_failed", error=repr(exc))
        return
    log.info("consumer_state", **state)


def _task(task: Any) -> str:
    """A fetcher task's coroutine name and where it waits."""
    coro = task.get_coro()
    where = []
    while coro is not None and hasattr(coro, "cr_frame"):  # the chain of awaits
        frame = coro.cr_frame
        if frame is not None:
            where.append(f"{coro.__qualname__}:{frame.f_lineno}")
        coro = coro.cr_await
    return " > ".join(where) or repr(task.get_coro())


def _names(tps: set[TP]) -> list[str]:
    return sorted(f"{tp.topic}:{tp.partition}" for tp in tps)


def _aiokafka_consumer(consumer: Any) -> Any:
    thread = getattr(consumer, "_thread", None)
    return getattr(thread, "_consumer", None)


def _fetch_state(assignment: Any, fetcher: Any, tp: TP) -> Mapping[str, Any]:
    """aiokafka's view of ``tp``: status, position, paused, a buffered fetch."""
    row: dict[str, Any] = {}
    if assignment is None:
        return row
    ktp = TopicPartition(tp.topic, tp.partition)
    state = assignment.state_value(ktp)
    if state is None:
        row["fetch"] = "unassigned"
        return row
    row["fetch"] = str(getattr(state, "_status", "?"))
    row["position"] = getattr(state, "_position", None)
    row["fetch_paused"] = bool(getattr(state, "_paused", False))
    row["reset"] = getattr(state, "_reset_strategy", None)  # awaiting a reset if set
    row["committed_waiters"] = len(getattr(state, "_committed_futs", ()))
    buffered = getattr(fetcher, "_records", {}).get(ktp)
    if buffered is not None:
        records = getattr(buffered, "_partition_records", None)
        row["fetched"] = getattr(records, "next_fetch_offset", type(buffered).__name__)
    return row
