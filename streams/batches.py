"""Finish each batch before it is acknowledged; fail fast if it cannot.

The worker's batches run in Faust's fetcher task (streams/drain.py), which
acknowledges a batch's offsets once its handler returned. When the task is
cancelled while it handles a batch (the worker stopping) or the handler raises, the
batch must not be acknowledged and committed half done: its changelog writes, dead
letters or reroutes may never have been sent, and the events would be lost. (Faust's
``Stream.take_events``, which fed the batches before, acknowledged them in a
``finally`` clause, and Faust's supervisor restarted a raising agent while its take
buffer stayed blocked.)

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
