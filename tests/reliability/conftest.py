"""Fixtures of the reliability suite: isolated settings, workers, and the results report."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opsmetrics.settings import Settings
from services.topics import ensure_topics
from tests.reliability.common import FAST_GROUP_ENV, PARTITIONS, SEED, Tally, write_forces
from tests.workers import Worker, WorkerPool

REPORT_ENV = "OPS_RELIABILITY_REPORT"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so the scenario fixture knows the outcome."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def pytest_report_header() -> str:
    return f"reliability seed: OPS_RELIABILITY_SEED={SEED}"


@pytest.fixture
def rel_settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings on the session broker: own topic prefix, three dense forces, created topics."""
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"r{uuid.uuid4().hex[:8]}.",
        topic_partitions=PARTITIONS,
        forces_file=write_forces(tmp_path / "forces.toml"),
        data_dir=tmp_path / "run",
        kafka_request_timeout_s=10.0,
        log_format="console",
    )
    ensure_topics(settings)
    return settings


class Pool(WorkerPool):
    """A worker pool whose workers leave a killed member's group slot after 10 s."""

    def start(self, **env: str) -> Worker:
        return super().start(**{**FAST_GROUP_ENV, **env})

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.proc is not None and w.proc.poll() is None]

    def logs(self) -> str:
        return "\n".join(w.log.read_text(errors="replace") for w in self.workers if w.log.exists())


@pytest.fixture
def pool(rel_settings: Settings, tmp_path: Path) -> Iterator[Pool]:
    """Real `opsmetrics worker` processes on ``rel_settings``; all stopped at the end."""
    p = Pool(rel_settings, tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


@dataclass
class Scenario:
    """One line of the reliability table, written when the test ends."""

    scenario: str
    events: int = 0  # unique events published
    messages: int = 0  # messages on the source topics (copies and hostile ones included)
    faults: str = ""
    lost: int | None = None
    twice: int | None = None
    duration_s: float = 0.0
    outcome: str = ""
    test: str = ""
    seed: int = SEED
    details: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def take(self, result: Tally) -> None:
        """Record the comparison with the truth (before asserting on it)."""
        self.lost, self.twice = result.lost, result.twice
        self.details["label_sets_differing"] = result.label_sets_differing

    def line(self) -> str:
        data = asdict(self)
        data.pop("started")
        data["at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return json.dumps(data, sort_keys=True)


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Scenario]]:
    """``scenario("1. ...")`` starts the clock; the line goes to $OPS_RELIABILITY_REPORT."""
    made: list[Scenario] = []

    def make(name: str) -> Scenario:
        made.append(Scenario(name, test=request.node.nodeid))
        return made[-1]

    yield make
    report = getattr(request.node, "rep_call", None)
    for s in made:
        s.duration_s = round(time.monotonic() - s.started, 1)
        s.outcome = report.outcome if report is not None else "error"
        print(f"\nRELIABILITY {s.line()}")
        path = os.environ.get(REPORT_ENV)
        if path:
            with Path(path).open("a", encoding="utf-8") as out:
                out.write(s.line() + "\n")
