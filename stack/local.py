"""The local stack behind ``make up`` / ``make down``: no Docker needed.

Parts start in order (Kafka, topics, stream worker, ingest API, Prometheus,
Alertmanager, simulator), each only if it is not already running, and stop in
reverse order. Every part's pid and log live in the run directory (``.run/``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from opsmetrics.settings import PROJECT_ROOT, Settings
from services.topics import ensure_topics
from stack.kafka import KafkaBroker
from stack.processes import ManagedProcess


@dataclass(frozen=True)
class Part:
    """One line of ``opsmetrics status``."""

    name: str
    running: bool
    where: str


def broker(settings: Settings) -> KafkaBroker:
    """The local broker described by the settings (``OPS_KAFKA_BOOTSTRAP``)."""
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    return KafkaBroker(
        data_dir=settings.data_dir / "kafka",
        host=host or "127.0.0.1",
        port=int(port),
        cache_dir=settings.cache_dir,
    )


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL from config
        return bool(resp.status == 200)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "opsmetrics.cli", *args]


def processes(settings: Settings, simulate: bool) -> list[ManagedProcess]:
    """The long-running Python parts, in start order."""
    run = settings.data_dir
    worker_url = f"http://{settings.worker_host}:{settings.worker_port}"
    ingest_url = f"http://{settings.ingest_host}:{settings.ingest_port}"
    parts = [
        ManagedProcess(
            "worker",
            _cli("worker"),
            run,
            ready=lambda: _http_ok(f"{worker_url}/health"),
            where=f"{worker_url}/metrics",
            ready_timeout_s=120,
        ),
        ManagedProcess(
            "ingest",
            _cli("ingest"),
            run,
            ready=lambda: _http_ok(f"{ingest_url}/health"),
            where=f"{ingest_url}/v1/events",
        ),
    ]
    parts = [p for p in parts if _available(p.name)]
    parts += monitoring(settings)
    if simulate:
        # A fresh seed each start: live ids never repeat those of an earlier run.
        seed = str(int(time.time()))
        parts.append(
            ManagedProcess(
                "simulator",
                _cli("simulate", "--seed", seed),
                run,
                where="live, 60x time compression",
            )
        )
    return parts


PROMETHEUS_URL = "http://127.0.0.1:9090"
ALERTMANAGER_URL = "http://127.0.0.1:9093"


def monitoring(settings: Settings) -> list[ManagedProcess]:
    """Prometheus (40 days of retention) and Alertmanager, when Debian's binaries exist."""
    if not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")):
        return []
    run = settings.data_dir
    return [
        ManagedProcess(
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={run / 'alertmanager.yml'}",
                f"--storage.path={run / 'alertmanager'}",
                "--web.listen-address=127.0.0.1:9093",
                "--cluster.listen-address=",  # no gossip: 9094 is Kafka's controller
            ],
            run,
            ready=lambda: _http_ok(f"{ALERTMANAGER_URL}/-/ready"),
            where=ALERTMANAGER_URL,
        ),
        ManagedProcess(
            "prometheus",
            [
                "prometheus",
                f"--config.file={PROJECT_ROOT / 'prometheus' / 'prometheus.yml'}",
                f"--storage.tsdb.path={run / 'prometheus'}",
                "--storage.tsdb.retention.time=40d",
                "--web.listen-address=127.0.0.1:9090",
            ],
            run,
            ready=lambda: _http_ok(f"{PROMETHEUS_URL}/-/ready"),
            where=PROMETHEUS_URL,
        ),
    ]


def render_alertmanager_config(settings: Settings) -> None:
    """Render alertmanager/alertmanager.yml.tmpl with the environment into the run dir."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "alertmanager" / "render.py"),
            "--output",
            str(settings.data_dir / "alertmanager.yml"),
        ],
        check=True,
        env=dict(os.environ),
        timeout=30,
    )


def _available(name: str) -> bool:
    """Whether the part's code is present in this checkout (parts land issue by issue)."""
    module = {"worker": "streams/app.py", "ingest": "services/ingest/app.py"}[name]
    return (PROJECT_ROOT / module).exists()


def up(settings: Settings, simulate: bool = True) -> list[Part]:
    """Start whatever is not running; return where each part listens."""
    kafka = broker(settings)
    if not kafka.is_running():
        kafka.start()
    kafka.wait_ready(timeout_s=120)
    ensure_topics(settings)
    out = [Part("kafka", True, kafka.bootstrap)]
    render_alertmanager_config(settings)
    for proc in processes(settings, simulate):
        proc.start()
        out.append(Part(proc.name, True, proc.where))
    return out


def down(settings: Settings) -> list[str]:
    """Stop every part that runs, in reverse order; return the names stopped."""
    stopped = []
    for proc in reversed(processes(settings, simulate=True)):
        if proc.stop():
            stopped.append(proc.name)
    kafka = broker(settings)
    if kafka.is_running():
        kafka.stop()
        stopped.append("kafka")
    return stopped


def status(settings: Settings) -> list[Part]:
    """Which parts are running."""
    kafka = broker(settings)
    parts = [Part("kafka", kafka.is_running(), kafka.bootstrap)]
    parts += [Part(p.name, p.is_running(), p.where) for p in processes(settings, simulate=True)]
    return parts


def log_dir(settings: Settings) -> Path:
    """Where the parts write their logs."""
    return settings.data_dir
