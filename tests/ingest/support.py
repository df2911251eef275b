"""Helpers for ingest API tests, unit and integration (and the end-to-end tests).

- :func:`write_sources` writes a sources file and returns the tokens.
- :class:`FakePublisher` records what would have gone to Kafka (unit tests only).
- :class:`IngestServer` runs the real app with uvicorn in a thread on a free port.
- :func:`ingest_server` runs it against a real broker (topics created, /health 200).
- :func:`post_events` sends events over HTTP and returns (status, body);
  :func:`send_batches` sends many, retrying on 503, and returns every result.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from opsmetrics.settings import Settings
from services.ingest.app import create_app
from services.ingest.auth import hash_token, new_token
from services.ingest.config import IngestSettings
from services.publisher import Delivery, PublishError
from services.simulator import Simulator
from services.topics import ensure_topics
from stack.kafka import free_port

DEFAULT_SOURCES: dict[str, dict[str, Any]] = {
    "rms-test": {"types": ["*"], "forces": ["lancashire"]},
    "referrals-only": {"types": ["referral.received"], "forces": ["*"]},
}


def write_sources(path: Path, sources: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """Write a sources file (one new token per source); return source name -> token."""
    tokens: dict[str, str] = {}
    lines = []
    for name, entry in (sources or DEFAULT_SOURCES).items():
        tokens[name] = new_token()
        lines.append(f"[sources.{name}]")
        lines.append(f'token_hashes = ["{hash_token(tokens[name])}"]')
        for key, value in entry.items():
            rendered = (
                "[" + ", ".join(f'"{v}"' for v in value) + "]"
                if isinstance(value, list)
                else repr(value)
            )
            lines.append(f"{key} = {rendered}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return tokens


def event(kind: str = "referral.received", **fields: Any) -> dict[str, Any]:
    """One valid event as a JSON-ready dict (no ``source``: the API sets it)."""
    base: dict[str, Any] = {
        "version": 1,
        "event_id": f"test:{uuid.uuid4().hex}",
        "type": kind,
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "force": "lancashire",
        "division": "east",
    }
    extra: dict[str, dict[str, Any]] = {
        "referral.received": {"referrer": "nca", "risk": "high"},
        "warrant.executed": {"origin": "proactive"},
        "arrest.made": {"persons": 2, "origin": "referral", "previously_known": False},
        "safeguarding.action": {"children": 3},
    }
    return {**base, **extra[kind], **fields}


def simulated_events(settings: Settings, n: int, seed: int = 7) -> list[dict[str, Any]]:
    """At least ``n`` realistic events for the configured forces, as JSON-ready dicts."""
    sim = Simulator(settings.forces, seed=seed)
    start = datetime(2025, 4, 1, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    days = 30
    while len(out) < n:
        out = [e.to_wire() for e in sim.generate(start, start + timedelta(days=days))]
        days *= 2
    for e in out[:n]:
        e.pop("source", None)
    return out[:n]


class FakePublisher:
    """Records published events; ``fail`` makes publishing raise PublishError."""

    def __init__(self) -> None:
        self.published: list[Any] = []
        self.fail = False
        self.closed = False

    def publish_many(self, events: Sequence[Any]) -> list[Delivery]:
        if self.fail:
            raise PublishError("Kafka did not confirm delivery (test)")
        self.published.extend(events)
        return [Delivery(e.event_id, "t", 0, i) for i, e in enumerate(events)]

    def close(self, timeout_s: float = 10.0) -> None:
        self.closed = True


def post_events(
    base_url: str, token: str | None, body: Any, timeout_s: float = 60.0
) -> tuple[int, dict[str, Any], httpx.Headers]:
    """POST a JSON body to /v1/events; return (status, parsed body, headers)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = httpx.post(f"{base_url}/v1/events", json=body, headers=headers, timeout=timeout_s)
    return resp.status_code, resp.json(), resp.headers


def send_batches(
    base_url: str,
    token: str,
    events: Sequence[dict[str, Any]],
    batch: int = 500,
    retry_for_s: float = 120.0,
) -> list[dict[str, Any]]:
    """Send events in arrays of ``batch``, re-sending a batch after 503; return all results."""
    results: list[dict[str, Any]] = []
    for start in range(0, len(events), batch):
        chunk = list(events[start : start + batch])
        deadline = time.monotonic() + retry_for_s
        while True:
            status, body, headers = post_events(base_url, token, chunk)
            if status != 503 or time.monotonic() > deadline:
                break
            time.sleep(min(float(headers.get("Retry-After", "1")), 2.0))
        assert status == 207, (status, body)
        results.extend(body["results"])
    return results


class IngestServer:
    """The real ingest app served by uvicorn in a thread (context manager)."""

    def __init__(self, settings: Settings, ingest: IngestSettings) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, ingest)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> IngestServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("ingest server did not start")
            time.sleep(0.05)
        return self

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Wait until /health answers 200 (Kafka reachable, topics present)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if httpx.get(f"{self.base_url}/health", timeout=5).status_code == 200:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.base_url}/health not 200 within {timeout_s} s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)


def keys(records: Iterable[Any]) -> list[str]:
    """The message keys (event ids) of Kafka records."""
    return [r.key.decode() for r in records]


@contextmanager
def ingest_server(
    settings: Settings, tmp_path: Path, **overrides: Any
) -> Iterator[tuple[IngestServer, dict[str, str]]]:
    """The real ingest API on a free port, with topics created and /health 200; yields
    (server, tokens) where tokens maps the test sources to their bearer tokens."""
    ensure_topics(settings)
    tokens = write_sources(tmp_path / "sources.toml")
    ingest = IngestSettings(
        sources_file=tmp_path / "sources.toml",
        dedup_file=tmp_path / "dedup.sqlite3",
        **{"publish_timeout_s": 15.0, "health_interval_s": 1.0, "retry_after_s": 1, **overrides},
    )
    with IngestServer(settings, ingest) as server:
        server.wait_healthy()
        yield server, tokens
