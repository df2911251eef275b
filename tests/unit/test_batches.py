"""streams/batches.py: a batch is finished before its events can be acknowledged."""

from __future__ import annotations

import asyncio
from typing import NoReturn

import pytest

from streams.batches import EXIT_BATCH_FAILED, complete


class Exited(Exception):
    """Stands in for os._exit in these tests."""


def fake_exit(code: int) -> NoReturn:
    raise Exited(code)


def test_a_cancelled_caller_waits_for_the_batch_to_finish() -> None:
    steps: list[str] = []
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(0.05)  # e.g. queueing the changelog batches
        steps.append("writes sent")

    async def agent() -> None:
        await complete(work(), fake_exit)
        steps.append("next batch")  # never reached: the cancellation propagates

    async def main() -> None:
        task = asyncio.ensure_future(agent())
        await started.wait()
        task.cancel()  # the worker stops mid-batch
        with pytest.raises(asyncio.CancelledError):
            await task
        steps.append("acknowledged")  # take_events acks only after the agent let go

    asyncio.run(main())
    assert steps == ["writes sent", "acknowledged"]


def test_a_second_cancellation_does_not_cut_the_batch_short() -> None:
    done: list[bool] = []

    async def work() -> None:
        for _ in range(5):
            await asyncio.sleep(0.01)
        done.append(True)

    async def main() -> None:
        task = asyncio.ensure_future(complete(work(), fake_exit))
        for _ in range(3):
            await asyncio.sleep(0.01)
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert done == [True]


def test_a_failed_batch_exits_before_returning() -> None:
    async def work() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("broker refused the changelog batch")

    with pytest.raises(Exited) as exited:
        asyncio.run(complete(work(), fake_exit))
    assert exited.value.args == (EXIT_BATCH_FAILED,)


def test_a_finished_batch_returns_normally() -> None:
    ran: list[int] = []

    async def work() -> None:
        await asyncio.sleep(0)
        ran.append(1)

    asyncio.run(complete(work(), fake_exit))
    assert ran == [1]
