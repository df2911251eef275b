"""Run the real alert rules with promtool and Prometheus over simulated chunks.

Layout: simulated time is cut into independent chunks of :data:`CHUNK_WEEKS`
weeks that all share one time range; each chunk is a distinct ``force`` label
(``clean-007``, ``triple-3d-042``...) with the configured divisions. The detector
looks back at most four weeks plus seven days, so chunks are independent
realisations: the first :data:`WARMUP_WEEKS` weeks run on the configured-rate
fallback (scored separately), the rest on the full four-week baseline.

Samples are written at every event and every :data:`KEEPALIVE` seconds, and the
evaluation server runs with a matching ``--query.lookback-delta``, so every
instant lookup returns the exact count at that time (as a 15 s scrape would).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from alerts_eval.params import EXPECTED, PARTITION_ACTIVE, SOURCE_PARTITIONS, WEEK_SECONDS
from alerts_eval.simulate import DAY

CHUNK_WEEKS = 12
WARMUP_WEEKS = 5
KEEPALIVE = 3 * 3_600
LOOKBACK = "4h"
EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z, a Monday
COUNTER_FAMILY = "ops_referrals_received"


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus duration such as ``1m`` or ``1w6h``."""
    units = {"w": WEEK_SECONDS, "d": DAY, "h": 3_600, "m": 60, "s": 1}
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        else:
            total += int(number) * units[ch]
            number = ""
    return total


@dataclass(frozen=True)
class Rule:
    """One alerting rule as written in the rule file."""

    group: str
    interval: int
    expr: str
    hold: int
    keep: int
    labels: dict[str, str]


def load_alert_rules(path: Path, alertname: str) -> list[Rule]:
    """The rules named ``alertname`` in a Prometheus rule file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules: list[Rule] = []
    for group in data["groups"]:
        interval = parse_duration(str(group.get("interval", "1m")))
        for rule in group["rules"]:
            if rule.get("alert") != alertname:
                continue
            rules.append(
                Rule(
                    group=str(group["name"]),
                    interval=interval,
                    expr=str(rule["expr"]),
                    hold=parse_duration(str(rule.get("for", "0s"))),
                    keep=parse_duration(str(rule.get("keep_firing_for", "0s"))),
                    labels={str(k): str(v) for k, v in rule.get("labels", {}).items()},
                )
            )
    return rules


def write_openmetrics(
    path: Path,
    chunks: dict[str, dict[str, npt.NDArray[np.float64]]],
    per_year: dict[str, float],
    end: int,
) -> int:
    """Write counters (one series per force and division), the rate gauge, and
    the partition-coverage gauges of one worker owning the only partition.

    ``chunks`` maps force -> division -> sorted event times (seconds from the
    start). Returns the number of samples written.
    """
    keep = np.arange(0, end + 1, KEEPALIVE, dtype=np.float64)
    samples = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(f"# TYPE {COUNTER_FAMILY} counter\n")
        for force, divisions in chunks.items():
            for division, events in divisions.items():
                times = np.unique(np.concatenate([keep, np.ceil(events)]))
                counts = np.searchsorted(events, times, side="right")
                labels = f'force="{force}",division="{division}",referrer="nca",risk="high"'
                lines = [
                    f"{COUNTER_FAMILY}_total{{{labels}}} {c} {EPOCH + int(t)}\n"
                    for t, c in zip(times, counts, strict=True)
                ]
                out.writelines(lines)
                samples += len(lines)
        out.write(f"# TYPE {EXPECTED} gauge\n")
        for force, divisions in chunks.items():
            for division in divisions:
                rate = per_year[division]
                labels = f'force="{force}",division="{division}"'
                lines = [f"{EXPECTED}{{{labels}}} {rate} {EPOCH + int(t)}\n" for t in keep]
                out.writelines(lines)
                samples += len(lines)
        for name, labels in ((PARTITION_ACTIVE, '{partition="0"}'), (SOURCE_PARTITIONS, "")):
            out.write(f"# TYPE {name} gauge\n")
            lines = [f"{name}{labels} 1 {EPOCH + int(t)}\n" for t in keep]
            out.writelines(lines)
            samples += len(lines)
        out.write("# EOF\n")
    return samples


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prometheus_server(data_dir: Path, workdir: Path) -> Iterator[str]:
    """Run a throw-away Prometheus on the backfilled TSDB; yield its base URL."""
    if shutil.which("prometheus") is None:
        raise RuntimeError("prometheus is not installed: run prometheus/install.sh")
    port = _free_port()
    config = workdir / "prometheus-eval.yml"
    config.write_text("global:\n  scrape_interval: 1h\n", encoding="utf-8")
    log = (workdir / "prometheus.log").open("w", encoding="utf-8")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={data_dir}",
            "--storage.tsdb.retention.time=100y",
            f"--query.lookback-delta={LOOKBACK}",
            "--query.max-samples=200000000",
            "--query.timeout=10m",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited; see {workdir / 'prometheus.log'}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as resp:  # noqa: S310
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready in 300 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def query_instant(url: str, expr: str, at: int) -> list[dict[str, Any]]:
    """One ``/api/v1/query`` call at time ``at``; returns the result vector."""
    params = urllib.parse.urlencode({"query": expr, "time": at, "timeout": "5m"})
    request = urllib.request.Request(f"{url}/api/v1/query", data=params.encode())  # noqa: S310
    with urllib.request.urlopen(request, timeout=600) as resp:  # noqa: S310
        body = json.loads(resp.read())
    if body.get("status") != "success":
        raise RuntimeError(f"query failed: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def backfill(openmetrics: Path, data_dir: Path) -> None:
    """``promtool tsdb create-blocks-from openmetrics`` into ``data_dir``."""
    if shutil.which("promtool") is None:
        raise RuntimeError("promtool is not installed: run prometheus/install.sh")
    subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            str(openmetrics),
            str(data_dir),
        ],
        check=True,
    )


@contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    """A scratch directory (kept when ``keep`` is given)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    base = os.environ.get("OPS_EVAL_TMP")
    with tempfile.TemporaryDirectory(prefix="alerts-eval-", dir=base) as tmp:
        yield Path(tmp)
