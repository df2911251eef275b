"""Events per second through the ingest API (HTTP -> classifier -> Kafka ack).

Against a running ingest API and broker::

    python benchmarks/ingest_bench.py --url http://127.0.0.1:8080 --token opsi_... \\
        --events 50000 --concurrency 4

Without ``--url`` it starts its own broker (stack/kafka.py, temporary directory, free
ports), creates the topics, writes a sources file with a fresh token, runs
``python -m services.ingest.cli ingest`` and stops everything afterwards.
Every event is new (unique ``event_id``), so every one is published and acknowledged.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opsmetrics.settings import Settings  # noqa: E402
from services.ingest.auth import hash_token, new_token  # noqa: E402
from services.topics import ensure_topics  # noqa: E402
from stack.kafka import KafkaBroker, free_port  # noqa: E402


def make_events(n: int, force: str, divisions: list[str], seed: int = 1) -> list[dict[str, Any]]:
    """``n`` valid events with unique ids, spread over the last 30 days."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    run = uuid.uuid4().hex[:8]
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("referral.received", {"referrer": "nca", "risk": "medium"}),
        ("warrant.executed", {"origin": "referral"}),
        ("arrest.made", {"persons": 1, "origin": "proactive", "previously_known": False}),
        ("safeguarding.action", {"children": 2}),
    ]
    out = []
    for i in range(n):
        kind, extra = rng.choice(kinds)
        occurred = now - timedelta(seconds=rng.uniform(60, 30 * 86400))
        out.append(
            {
                "version": 1,
                "event_id": f"bench:{run}:{i:08d}",
                "type": kind,
                "occurred_at": occurred.isoformat(timespec="seconds"),
                "force": force,
                "division": rng.choice(divisions),
                **extra,
            }
        )
    return out


def run(url: str, token: str, events: list[dict[str, Any]], batch: int, workers: int) -> None:
    """Post the events in batches from ``workers`` threads; print the figures."""
    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    outcomes: dict[str, int] = {}

    def send(chunk: list[dict[str, Any]], client: httpx.Client) -> None:
        while True:
            started = time.perf_counter()
            resp = client.post(f"{url}/v1/events", json=chunk, headers=headers)
            if resp.status_code in (429, 503):
                time.sleep(float(resp.headers.get("Retry-After", "1")))
                continue
            latencies.append(time.perf_counter() - started)
            if resp.status_code != 207:
                raise SystemExit(f"unexpected {resp.status_code}: {resp.text[:300]}")
            for r in resp.json()["results"]:
                outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
            return

    clients = [httpx.Client(timeout=120) for _ in range(workers)]
    # warm-up (connections, producer metadata); not counted
    send(make_events(batch, events[0]["force"], [events[0]["division"]], seed=99), clients[0])
    latencies.clear()
    outcomes.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda ic: send(ic[1], clients[ic[0] % workers]), enumerate(batches)))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[max(0, int(len(ms) * 0.95) - 1)]
    print(
        f"{len(events)} events in {len(batches)} requests of {batch}, {workers} concurrent: "
        f"{elapsed:.2f} s, {len(events) / elapsed:,.0f} events/s; "
        f"per request p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms; "
        f"outcomes {outcomes}"
    )


@contextmanager
def own_stack(workdir: Path) -> Iterator[tuple[str, str, Settings]]:
    """A temporary broker and ingest API; yields (url, token, settings)."""
    broker = KafkaBroker(
        data_dir=workdir / "kafka",
        port=free_port(),
        controller_port=free_port(),
        cache_dir=Settings().cache_dir,
    )
    settings = Settings(kafka_bootstrap=broker.bootstrap, data_dir=workdir / "run")
    token = new_token()
    sources = workdir / "sources.toml"
    sources.write_text(
        f'[sources.bench]\ntoken_hashes = ["{hash_token(token)}"]\n'
        'types = ["*"]\nforces = ["*"]\nrate_per_s = 1000000\nburst = 10000000\n'
    )
    port = free_port()
    env = {
        **os.environ,
        "OPS_KAFKA_BOOTSTRAP": broker.bootstrap,
        "OPS_DATA_DIR": str(settings.data_dir),
        "OPS_INGEST_PORT": str(port),
        "OPS_INGEST_SOURCES_FILE": str(sources),
        "OPS_LOG_LEVEL": "WARNING",
    }
    proc: subprocess.Popen[bytes] | None = None
    broker.start()
    try:
        broker.wait_ready(120)
        ensure_topics(settings)
        log = (workdir / "ingest.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.ingest.cli", "ingest"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("ingest API did not become healthy; see " + log.name)
            time.sleep(0.2)
        yield url, token, settings
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running ingest API (default: start our own stack)")
    parser.add_argument("--token", default=os.environ.get("OPS_INGEST_TOKEN"))
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    settings = Settings()
    force = sorted(settings.forces)[0]
    events = make_events(args.events, force, settings.forces[force].divisions)
    if args.url:
        if not args.token:
            raise SystemExit("--token (or OPS_INGEST_TOKEN) is required with --url")
        run(args.url.rstrip("/"), args.token, events, args.batch, args.concurrency)
        return
    with (
        tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp,
        own_stack(Path(tmp)) as (
            url,
            token,
            _,
        ),
    ):
        run(url, token, events, args.batch, args.concurrency)


if __name__ == "__main__":
    main()
