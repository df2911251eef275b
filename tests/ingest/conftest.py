"""Fixtures for ingest API unit tests: the app with a fake publisher and known tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from opsmetrics.settings import Settings
from services.ingest.app import IngestService, create_app
from services.ingest.auth import load_sources
from services.ingest.config import IngestSettings
from services.ingest.dedup import DedupStore
from services.ingest.kafka_link import KafkaLink
from services.ingest.limits import RateLimiter
from tests.ingest.support import FakePublisher, write_sources


@dataclass
class Api:
    """A unit-test API: its client, tokens, fake publisher and the knobs to break Kafka."""

    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    publisher: FakePublisher
    link: KafkaLink
    probe_problem: list[str | None]
    clock: list[float]

    @property
    def service(self) -> IngestService:
        service: IngestService = self.app.state.service
        return service

    def auth(self, source: str = "rms-test") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[source]}"}

    def post(self, body: Any, source: str | None = "rms-test", **kw: Any) -> Any:
        headers = self.auth(source) if source else {}
        return self.client.post("/v1/events", json=body, headers=headers, **kw)

    def check_kafka(self) -> None:
        anyio.run(self.link.check)


def build_api(
    settings: Settings,
    directory: Path,
    sources: dict[str, dict[str, Any]] | None = None,
    **overrides: Any,
) -> Api:
    """An :class:`Api` whose files live in ``directory``; ``overrides`` are IngestSettings."""
    directory.mkdir(parents=True, exist_ok=True)
    sources_file = directory / "sources.toml"
    tokens = write_sources(sources_file, sources)
    ingest = IngestSettings(sources_file=sources_file, **overrides)
    publisher = FakePublisher()
    problem: list[str | None] = [None]
    clock = [1000.0]
    link = KafkaLink(lambda: publisher, lambda: problem[0])
    app = create_app(
        settings,
        ingest,
        auth=load_sources(sources_file, settings.forces),
        link=link,
        dedup=DedupStore(directory / "dedup.sqlite3", 30 * 86400),
        limiter=RateLimiter(ingest.rate_per_s, ingest.burst, clock=lambda: clock[0]),
    )
    anyio.run(link.check)
    return Api(app, TestClient(app), tokens, publisher, link, problem, clock)


@pytest.fixture
def make_api(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> Iterator[Callable[..., Api]]:
    """Build an :class:`Api`; keyword arguments override IngestSettings fields."""
    made: list[Api] = []

    def make(sources: dict[str, dict[str, Any]] | None = None, **overrides: Any) -> Api:
        api = build_api(make_settings(), tmp_path / f"api-{len(made)}", sources, **overrides)
        made.append(api)
        return api

    yield make
    for api in made:
        api.client.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    """The API with the default test sources and a working (fake) Kafka."""
    return make_api()
