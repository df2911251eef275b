"""A real Prometheus and Alertmanager for end-to-end tests, and a webhook that records alerts.

Prometheus and Alertmanager are Debian's binaries (prometheus/install.sh), started
on free loopback ports with short intervals, the project's own rule files and
Alertmanager routing, and stopped at the end.
"""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from stack.kafka import free_port
from stack.processes import stop_group, wait_until

PROMTOOL_BACKFILL = ("promtool", "tsdb", "create-blocks-from", "openmetrics", "-q")


class Webhook:
    """An HTTP server on loopback that keeps every Alertmanager notification."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def firing(self, alertname: str) -> list[tuple[str, dict[str, str]]]:
        """(receiver, labels) of every firing ``alertname`` notified so far."""
        return [
            (str(n.get("receiver")), a["labels"])
            for n in list(self.received)
            for a in n.get("alerts", [])
            if a.get("status") == "firing" and a["labels"].get("alertname") == alertname
        ]

    def alertnames(self) -> set[str]:
        """Names of every alert notified so far (firing)."""
        return {
            a["labels"]["alertname"]
            for n in self.received
            for a in n.get("alerts", [])
            if a.get("status") == "firing"
        }

    def close(self) -> None:
        self.server.shutdown()


def _start(
    argv: list[str], log: Path, ready_url: str, timeout_s: float = 60
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited: " + log.read_text(errors="replace")[-2000:])
        with urllib.request.urlopen(ready_url, timeout=2) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)

    if not wait_until(ready, timeout_s):
        stop_group(proc.pid)
        raise RuntimeError(f"{argv[0]} not ready in {timeout_s} s: " + log.read_text()[-2000:])
    return proc


class Prometheus:
    """Query a running Prometheus over its HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the result vector (raises on a query error)."""
        q = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=10) as resp:  # noqa: S310
            body = json.load(resp)
        if body["status"] != "success":
            raise AssertionError(f"query failed: {expr}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of a query returning at most one sample."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None


@contextmanager
def monitoring(
    tmp: Path,
    worker_urls: Sequence[str],
    rule_files: Sequence[Path],
    alertmanager_config: dict[str, Any] | None = None,
    interval: str = "1s",
    history: Path | None = None,
) -> Iterator[tuple[Prometheus, str]]:
    """Run Prometheus scraping ``worker_urls`` with ``rule_files`` (and an Alertmanager
    with ``alertmanager_config`` when given). Yields (Prometheus, Alertmanager URL or "").

    ``history`` is an OpenMetrics file backfilled into the TSDB (``promtool tsdb
    create-blocks-from openmetrics``) before Prometheus starts, for rules that look
    weeks back; retention is long enough to keep it."""
    procs: list[subprocess.Popen[bytes]] = []
    am_url = ""
    try:
        alerting: dict[str, Any] = {}
        if alertmanager_config is not None:
            am_port = free_port()
            am_dir = tmp / "alertmanager"
            am_dir.mkdir(parents=True, exist_ok=True)
            (am_dir / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config))
            am_url = f"http://127.0.0.1:{am_port}"
            procs.append(
                _start(
                    [
                        "prometheus-alertmanager",
                        f"--config.file={am_dir / 'alertmanager.yml'}",
                        f"--storage.path={am_dir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{am_port}",
                        "--cluster.listen-address=",
                    ],
                    am_dir / "log.txt",
                    f"{am_url}/-/ready",
                )
            )
            alerting = {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
            }
        port = free_port()
        prom_dir = tmp / "prometheus"
        prom_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [
                {
                    "job_name": "ops-stream",
                    "static_configs": [{"targets": [u.split("//", 1)[1] for u in worker_urls]}],
                }
            ],
            **({"alerting": alerting} if alerting else {}),
        }
        (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        if history is not None:
            subprocess.run(
                [*PROMTOOL_BACKFILL, str(history), str(prom_dir / "data")],
                check=True,
                capture_output=True,
            )
        url = f"http://127.0.0.1:{port}"
        procs.append(
            _start(
                [
                    "prometheus",
                    f"--config.file={prom_dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={prom_dir / 'data'}",
                    "--storage.tsdb.retention.time=60d",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                prom_dir / "log.txt",
                f"{url}/-/ready",
            )
        )
        yield Prometheus(url), am_url
    finally:
        for proc in reversed(procs):
            stop_group(proc.pid)
