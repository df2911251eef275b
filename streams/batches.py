"""Finish each batch before Faust acknowledges its events; fail fast if it cannot.

faust-streaming's ``Stream.take_events`` acknowledges a batch's events in a
``finally`` clause. So when the agent is cancelled while it handles a batch (the
worker stopping, an agent restart) or raises, the events are acknowledged all the
same and their offsets committed, although their changelog writes, dead letters or
reroutes may never have been sent: the events are lost, and a raising agent is
restarted by Faust's supervisor while the old batch's take buffer stays blocked.

:func:`complete` closes both holes. A cancellation waits for the batch to finish
before it propagates, so what is acknowledged was done. A batch that fails ends the
process at once (exit code :data:`EXIT_BATCH_FAILED`), before anything more can be
committed: the restarted worker replays everything since the last commit, and the
counter's per-key offsets make the replay exact (streams/counter.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, Final, NoReturn

import structlog

log = structlog.get_logger(__name__)

EXIT_BATCH_FAILED: Final = 70  # EX_SOFTWARE: restart the worker; Kafka replays the batch


async def complete(
    work: Coroutine[Any, Any, None], fail: Callable[[int], NoReturn] = os._exit
) -> None:
    """Run one batch's ``work`` to its end, even if the caller is cancelled meanwhile.

    Re-raises the caller's cancellation once the work is done. If the work raises
    (or is itself cancelled) the error is logged and ``fail(EXIT_BATCH_FAILED)`` ends
    the process without returning.
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                cancelled = True  # the caller was cancelled: finish the batch first
        except Exception:  # noqa: BLE001, S110 - read from the task below
            pass
    error: BaseException | None = asyncio.CancelledError() if task.cancelled() else task.exception()
    if error is not None:
        exit_now("batch_failed", error, fail)
    if cancelled:
        raise asyncio.CancelledError


def exit_now(
    what: str, error: BaseException, fail: Callable[[int], NoReturn] = os._exit
) -> NoReturn:
    """Log ``what`` went wrong and end the process before any offset can be committed."""
    log.critical(
        what,
        error_type=type(error).__name__,
        error=str(error)[:300],
        exit_code=EXIT_BATCH_FAILED,
        hint="restart the worker: Kafka replays what was not committed",
    )
    fail(EXIT_BATCH_FAILED)
