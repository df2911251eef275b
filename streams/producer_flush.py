"""Make Faust's producer flush drain its buffer before offsets are committed.

faust-streaming's ``ProducerBuffer.flush()`` returns as soon as one queued message
takes longer than 0.1 s to be handed to the Kafka client, with table changelog
writes still queued. The consumer flushes the producer and then commits offsets,
so under load it committed offsets of messages whose table writes were never sent:
a ``kill -9`` then lost them (found by tests/reliability/test_crashes.py and
test_duplicates.py). :func:`install` replaces ``flush`` with one that waits until
the queue is empty and no message is on its way to the client.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.producer import ProducerBuffer

_WAIT_S = 0.1


async def _send_pending(self: Any, fut: Any) -> None:
    self._opsmetrics_inflight = getattr(self, "_opsmetrics_inflight", 0) + 1
    try:
        await _ORIGINAL_SEND(self, fut)
    finally:
        self._opsmetrics_inflight -= 1


async def _flush(self: Any) -> None:
    """Wait until every queued message was handed to the Kafka client."""
    while self.size or getattr(self, "_opsmetrics_inflight", 0):
        if self.state != "running" and self.size:
            raise RuntimeError("Cannot flush: Producer not Running")
        self.message_sent.clear()
        try:
            await asyncio.wait_for(self.message_sent.wait(), timeout=_WAIT_S)
        except TimeoutError:
            continue


_ORIGINAL_SEND = ProducerBuffer._send_pending


def install() -> None:
    """Patch ``ProducerBuffer`` (idempotent)."""
    if ProducerBuffer.flush is not _flush:
        ProducerBuffer._send_pending = _send_pending  # type: ignore[method-assign]
        ProducerBuffer.flush = _flush  # type: ignore[method-assign]
