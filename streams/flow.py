"""Whether the consumer may hand fetched records on: the checks Faust's path makes."""

from __future__ import annotations

from typing import Any


def flowing(consumer: Any, generation: int) -> bool:
    """True while records fetched in consumer generation ``generation`` may be applied.

    Faust's path stops delivering when the flow is stopped or suspended (a rebalance
    began), the app's flow control is off, the consumer is stopping, or the generation
    changed since the fetch (``getmany`` and the drain loop's ``wait_first``).
    """
    app = consumer.app
    return bool(
        consumer.flow_active
        and not consumer.suspend_flow.is_set()
        and app.flow_control.is_active()
        and not consumer.should_stop
        and app.consumer_generation_id == generation
    )
