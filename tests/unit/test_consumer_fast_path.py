"""The consumer's fast ``wait_first`` behaves as mode's for every way a callback can go.

Each scenario runs against mode's ``Service.wait_first`` and the fast one
(streams/consumer_fast_path.py) and must observe the same thing: what the callback
did, whether it was cancelled, and what ``wait_first`` returned or raised.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from mode import Service

from streams import consumer_fast_path

Scenario = Callable[[Service, Callable[..., Awaitable[Any]]], Awaitable[list[Any]]]


class Svc(Service):
    """A bare mode service, as Faust's consumer is one."""


async def _immediate(svc: Service, wait_first: Callable[..., Awaitable[Any]]) -> list[Any]:
    log: list[Any] = []
    suspend = asyncio.Event()

    async def callback() -> str:
        log.append("ran")
        return "done"

    other = suspend.wait()
    res = await wait_first(callback(), other)
    await asyncio.sleep(0.01)
    # the other awaitable was closed or ran to its end, never left unawaited
    return [*log, len(res.done), res.results, res.stopped, other.cr_frame is None]


async def _waits_then_finishes(
    svc: Service, wait_first: Callable[..., Awaitable[Any]]
) -> list[Any]:
    log: list[Any] = []
    suspend = asyncio.Event()
    gate = asyncio.get_running_loop().create_future()

    async def callback() -> str:
        log.append("started")
        log.append(await gate)
        return "done"

    task = asyncio.ensure_future(wait_first(callback(), suspend.wait()))
    await asyncio.sleep(0.01)
    gate.set_result("released")
    res = await task
    return [*log, len(res.done), res.results, res.stopped]


async def _interrupted_by_suspend(
    svc: Service, wait_first: Callable[..., Awaitable[Any]]
) -> list[Any]:
    log: list[Any] = []
    suspend = asyncio.Event()
    gate = asyncio.get_running_loop().create_future()

    async def callback() -> str:
        log.append("started")
        try:
            await gate
        except asyncio.CancelledError:
            log.append("cancelled")
            raise
        log.append("finished")
        return "done"

    task = asyncio.ensure_future(wait_first(callback(), suspend.wait()))
    await asyncio.sleep(0.01)
    suspend.set()
    res = await task
    await asyncio.sleep(0.01)
    return [*log, len(res.done), res.results, res.stopped]


async def _raises(svc: Service, wait_first: Callable[..., Awaitable[Any]]) -> list[Any]:
    suspend = asyncio.Event()
    other = suspend.wait()

    async def callback() -> str:
        raise ValueError("bad message")

    try:
        await wait_first(callback(), other)
    except ValueError as exc:
        await asyncio.sleep(0.01)
        return ["raised", str(exc), other.cr_frame is None]
    return ["no error"]


async def _service_stopped(svc: Service, wait_first: Callable[..., Awaitable[Any]]) -> list[Any]:
    log: list[Any] = []
    suspend = asyncio.Event()
    svc._stopped.set()

    async def callback() -> str:
        log.append("ran")
        return "done"

    res = await wait_first(callback(), suspend.wait())
    await asyncio.sleep(0.01)
    return [*log, len(res.done), res.results, res.stopped]


async def _event_argument(svc: Service, wait_first: Callable[..., Awaitable[Any]]) -> list[Any]:
    ev = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, ev.set)
    res = await wait_first(ev)
    return [res.done == [ev], res.stopped]


@pytest.mark.parametrize(
    "scenario",
    [
        _immediate,
        _waits_then_finishes,
        _interrupted_by_suspend,
        _raises,
        _service_stopped,
        _event_argument,
    ],
)
async def test_fast_wait_first_matches_mode(scenario: Scenario) -> None:
    slow = Svc()
    expected = await scenario(slow, slow.wait_first)
    fast = Svc()
    observed = await scenario(fast, types.MethodType(consumer_fast_path._wait_first, fast))
    assert observed == expected


async def test_a_callback_that_does_not_wait_starts_no_task() -> None:
    svc = Svc()
    before = len(asyncio.all_tasks())
    seen: list[int] = []

    async def callback() -> None:
        seen.append(len(asyncio.all_tasks()))

    await consumer_fast_path._wait_first(svc, callback(), asyncio.Event().wait())
    assert seen == [before]
