"""A Faust ``Monitor`` without the per-message bookkeeping.

Faust's default :class:`~faust.sensors.Monitor` runs on every message and every
stream event (``on_message_in``, ``on_stream_event_in``/``_out``,
``on_message_out``, ``track_tp_end_offset``): counters by topic, stream and task,
timestamps and latency deques that only Faust's own ``/stats`` pages read. Our
metrics come from prometheus_client (streams/collector.py), so :class:`QuietMonitor`
keeps only what Faust itself reads on the hot path: ``stream_inbound_time`` (the
consumer's "stream is idle" diagnostics). Everything per commit, send, rebalance or
web request is Faust's own code.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors import Monitor
from faust.types import TP


class QuietMonitor(Monitor):
    """Faust's Monitor minus the per-message and per-event statistics."""

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        """No per-message counters."""

    def on_stream_event_in(self, tp: TP, offset: int, stream: Any, event: Any) -> None:
        """Only the time a partition last fed a stream (read by Faust's idle checks)."""
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        """No per-event latency."""

    def on_message_out(self, tp: TP, offset: int, message: Any) -> None:
        """No per-message latency."""

    def track_tp_end_offset(self, tp: TP, offset: int) -> None:
        """No per-message end-offset copy (the consumer keeps its own highwater)."""
