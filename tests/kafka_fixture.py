"""Pytest plugin: a real Kafka broker for the test session.

Load it with ``pytest_plugins = ["tests.kafka_fixture"]`` (or ``-p tests.kafka_fixture``).

With ``OPS_KAFKA_BOOTSTRAP`` set, tests use that broker (security options from the other
``OPS_KAFKA_*`` settings) and ``kafka_broker`` is None. Otherwise one single-node broker
(stack/kafka.py) starts in a temp dir on free ports and stops at the end of the session.
A test that stops ``kafka_broker`` must start it again (``start()`` + ``wait_ready()``)
in a ``finally`` block: the ports stay the same, so ``kafka_bootstrap`` stays valid.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from opsmetrics.settings import Settings
from stack.kafka import KafkaBroker, admin_ping, free_port

READY_TIMEOUT_S = 120.0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Treat SIGTERM like Ctrl-C, so fixtures stop the broker and workers (own sessions)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker | None]:
    """The session's own broker, or None when ``OPS_KAFKA_BOOTSTRAP`` names an external one."""
    if os.environ.get("OPS_KAFKA_BOOTSTRAP"):
        yield None
        return
    broker = KafkaBroker(
        data_dir=tmp_path_factory.mktemp("kafka"),
        port=free_port(),
        controller_port=free_port(),
        cache_dir=Settings().cache_dir,
    )
    try:
        broker.start()
        broker.wait_ready(READY_TIMEOUT_S)
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker | None) -> str:
    """``host:port`` of a broker that has answered an admin call."""
    if kafka_broker is not None:
        return kafka_broker.bootstrap
    settings = Settings()
    if not admin_ping(settings.kafka_client_options(), timeout_s=15.0):
        pytest.fail(
            f"OPS_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} does not answer an admin call "
            "(list topics) within 15 s: start it (`opsmetrics kafka start`) or unset "
            "OPS_KAFKA_BOOTSTRAP to let the tests start their own broker",
            pytrace=False,
        )
    return settings.kafka_bootstrap
