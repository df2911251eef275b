"""Shared fixtures: the real Kafka broker (tests/kafka_fixture.py) and settings."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opsmetrics.settings import Settings

pytest_plugins = ["tests.kafka_fixture"]

FIXTURES = Path(__file__).parent / "fixtures"
CONTRACT_VECTORS = FIXTURES / "contract"


def load_vector(path: Path) -> tuple[str, bytes, str | None]:
    """(topic, value bytes, expected reason or None) of one contract test vector."""
    data = json.loads(path.read_text())
    if "value_base64" in data:
        value = base64.b64decode(data["value_base64"])
    else:
        value = json.dumps(data["value"]).encode()
    return data["topic"], value, data.get("expect_reason")


def vectors(kind: str) -> list[Path]:
    """The contract vectors under ``valid`` or ``invalid``."""
    return sorted((CONTRACT_VECTORS / kind).glob("*.json"))


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings isolated in tmp_path (own run dir); keyword arguments override fields."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {"data_dir": tmp_path / "run", "log_format": "console"}
        return Settings(**{**base, **overrides})

    return make


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, make_settings: Callable[..., Settings]) -> Settings:
    """Settings pointing at the session broker, with a topic prefix unique to this test."""
    return make_settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:8]}.")


@pytest.fixture
def workers(kafka_settings: Settings, tmp_path: Path):
    """Start real `opsmetrics worker` processes against the session broker."""
    from tests.workers import WorkerPool

    pool = WorkerPool(kafka_settings, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
