"""Real stream workers as separate processes, and reading their /metrics.

Used by the stream, ingest and reliability tests: nothing here is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from opsmetrics.settings import Settings
from stack.kafka import free_port
from stack.processes import pid_alive, stop_group

T = TypeVar("T")
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def wait_for(check: Callable[[], T], timeout_s: float = 60, what: str = "condition") -> T:
    """Poll ``check`` until it returns a truthy value (returned); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - a probe that fails means "not yet"
            error = exc
        time.sleep(0.25)
    raise AssertionError(
        f"timed out after {timeout_s} s waiting for {what}; last={last!r} error={error!r}"
    )


def scrape(url: str) -> Samples:
    """All samples of a /metrics page: name -> {sorted label items -> value}."""
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback test URL
        text = resp.read().decode()
    out: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return dict(out)


def sum_over(
    samples: Iterable[Samples], name: str, keep: Iterable[str]
) -> dict[tuple[str, ...], float]:
    """``sum by (keep) (name)`` over several workers' scrapes."""
    keep = list(keep)
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for sample in samples:
        for labels, value in sample.get(name, {}).items():
            d = dict(labels)
            out[tuple(d[k] for k in keep)] += value
    return dict(out)


@dataclass
class Worker:
    """One `opsmetrics worker` process."""

    settings: Settings
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        s = self.settings
        env = {
            # OPS_ settings come from self.settings only; library logs may be raised
            # from outside to follow a run's rebalances and recovery.
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("OPS_") or k == "OPS_LOG_LEVEL_LIBRARIES"
            },
            "OPS_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "OPS_TOPIC_PREFIX": s.topic_prefix,
            "OPS_TOPIC_PARTITIONS": str(s.topic_partitions),
            "OPS_FORCES_FILE": str(s.forces_file),
            "OPS_WORKER_PORT": str(self.port),
            "OPS_DATA_DIR": str(self.log.parent / f"data-{self.port}"),
            "OPS_LOG_FORMAT": "json",
            **self.env,
        }
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opsmetrics.cli", "worker"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:  # noqa: S310
                return bool(resp.status == 200)
        except OSError:
            return False

    def wait_healthy(self, timeout_s: float = 120) -> Worker:
        def check() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"worker exited {self.proc.returncode}; log {self.log}:\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            return self.healthy()

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if check():
                return self
            time.sleep(0.25)
        raise AssertionError(f"worker on {self.port} not healthy in {timeout_s} s; see {self.log}")

    def metrics(self) -> Samples:
        return scrape(f"{self.url}/metrics")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (default: kill -9) and wait for the process to end."""
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=60)

    def diagnosis(self, lines: int = 40, timeout_s: float = 15) -> str:
        """What the worker was doing: its last log lines, then its threads' and asyncio
        tasks' stacks (mode's SIGUSR1 dump, frames only), for a test that timed out."""
        if self.proc is None or self.proc.poll() is not None:
            return f"worker {self.port}: not running"
        start = self.log.stat().st_size
        tail = self.log.read_text(errors="replace").splitlines()[-lines:]
        state = self._consumer_state(timeout_s)
        start = self.log.stat().st_size
        os.kill(self.proc.pid, signal.SIGUSR1)

        def dumped() -> str | None:
            text = self.log.read_bytes()[start:].decode(errors="replace")
            # The dump ends with the loop thread's tasks; wait until the log stops growing.
            if "TASKS" not in text:
                return None
            time.sleep(0.5)
            again = self.log.read_bytes()[start:].decode(errors="replace")
            return again if again == text else None

        try:
            dump = wait_for(dumped, timeout_s, f"worker {self.port}'s stack dump") or ""
        except AssertionError as exc:
            dump = str(exc)
        frames = [
            line
            for line in dump.splitlines()
            if line.startswith(("THREAD ", "TASKS", "<Task", "Task"))
            or line.lstrip().startswith("File ")
        ]
        return "\n".join(
            [
                f"--- worker {self.port}: last log lines",
                *tail,
                "--- consumer state",
                state,
                "--- stacks",
                *frames[:400],
            ]
        )

    def _consumer_state(self, timeout_s: float) -> str:
        """The worker's ``consumer_state`` log line (SIGUSR2, streams/consumer_state.py)."""
        assert self.proc is not None
        start = self.log.stat().st_size
        os.kill(self.proc.pid, signal.SIGUSR2)

        def logged() -> str | None:
            text = self.log.read_bytes()[start:].decode(errors="replace")
            lines = [line for line in text.splitlines() if '"consumer_state' in line]
            return lines[0] if lines and lines[0].endswith("}") else None

        try:
            return wait_for(logged, timeout_s, f"worker {self.port}'s consumer state") or ""
        except AssertionError as exc:
            return str(exc)

    def stop(self) -> None:
        if self.proc is not None and pid_alive(self.proc.pid):
            stop_group(self.proc.pid, timeout_s=30)
            self.proc.wait(timeout=10)


class WorkerPool:
    """Start workers for a test and stop them all at the end."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.settings = settings
        self.tmp = tmp
        self.workers: list[Worker] = []

    def start(self, **env: str) -> Worker:
        port = free_port()
        worker = Worker(self.settings, port, self.tmp / f"worker-{port}.log", env=env).start()
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()
