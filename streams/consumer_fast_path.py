"""Run Faust's per-message consumer callback without four tasks when it need not wait.

For every message, faust-streaming's ``Consumer._drain_messages`` runs
``await self.wait_first(callback(message), self.suspend_flow.wait())``: mode's
``wait_first`` wraps the callback, the suspend-flow event and the consumer's
stopped and crashed events in four tasks, waits for the first to finish and cancels
the rest. The callback (the conductor: decode the message into an event and put it
on the stream's queue) almost never waits, and then those tasks cost more than the
callback itself (docs/performance.md).

:func:`install` gives the consumer a ``wait_first`` that first steps the callback
once in the caller's task. If it finishes in that step it had nothing to wait for,
so no other awaitable could have interrupted it: the result is the one mode's
``wait_first`` would return (the callback is done; the others were never started and
are closed). If it suspends, the rest of it runs under mode's ``wait_first`` with the
same awaitables as before, so a suspended flow or a stopping consumer interrupts it
exactly as before. Any other call (events, timeouts, a stopped or crashed consumer)
goes straight to mode's ``wait_first``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

from faust.transport.consumer import Consumer
from mode.services import Service, WaitResults


class _Resume:
    """Awaitable continuing a coroutine that was already stepped once."""

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - cancellation goes to the coroutine
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _resumed(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _Resume(coro, yielded)


async def _wait_first(self: Any, *coros: Any, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109 - mode's signature
    first = coros[0] if coros else None
    if (
        timeout is not None
        or not asyncio.iscoroutine(first)
        or self._stopped.is_set()
        or self._crashed.is_set()
    ):
        return await _ORIGINAL(self, *coros, timeout=timeout)
    try:
        yielded = first.send(None)
    except StopIteration as stop:
        _close(coros[1:])
        return WaitResults([first], [stop.value], False)
    except BaseException:
        _close(coros[1:])
        raise
    return await _ORIGINAL(self, _resumed(first, yielded), *coros[1:])


def _close(others: tuple[Any, ...]) -> None:
    for other in others:
        if asyncio.iscoroutine(other):
            other.close()  # never started: closing it runs nothing


_ORIGINAL = Service.wait_first


def install() -> None:
    """Give Faust's consumers the fast ``wait_first`` (idempotent)."""
    if Consumer.wait_first is not _wait_first:
        Consumer.wait_first = _wait_first  # type: ignore[method-assign]
