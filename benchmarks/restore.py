"""`make bench-restore`: how fast a restarted worker restores its tables.

The worker's tables live in memory; their changelogs on Kafka are the state. A worker
that starts (a deploy, a crash, a rebalance that moves partitions) reads them back
before it counts again, and the boards show nothing for those partitions meanwhile.

One worker replays the bench's topics (BENCH_EVENTS, default 200,000; the same topics
as `make bench`) and is stopped; then BENCH_RUNS (default 3) times a new worker (new
data directory, so nothing local) starts on the same consumer group, and the bench
times it from start to healthy (``/health`` turns 200 when the tables are restored and
the partitions assigned). Each restarted worker must export exactly the counts the
first one did, or the bench fails. Prints the changelog records read, seconds and
records per second, and writes ``benchmarks/results/restore.json``.

``RESTORE_TREES=name=<dir>,name=<dir>``: the restarts alternate between workers run from
those trees of the project (``PYTHONPATH``), BENCH_RUNS each, to compare side by side.

Usage: .venv/bin/python -m benchmarks.restore      (or: make bench-restore)
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import bench
from opsmetrics.settings import Settings
from services.topics import ensure_topics
from stack.kafka import free_port
from streams.changelogs import changelog_topics
from tests.workers import Samples, Worker, scrape, wait_for

RESULTS = Path(__file__).with_name("results") / "restore.json"
COUNTS = ("ops_events_processed_total", "ops_events_duplicate_total", "ops_events_rejected_total")


def changelog_records(settings: Settings) -> dict[str, int]:
    """Records held by each changelog topic (end offsets: what a restore reads at most)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        out = {}
        for topic in changelog_topics(settings):
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            out[topic] = sum(consumer.end_offsets(tps).values())
        return out
    finally:
        consumer.close()


def exported(worker: Worker) -> dict[str, Any]:
    """The worker's outcome counters (what the boards are fed), by name and labels."""
    samples: Samples = scrape(f"{worker.url}/metrics")
    return {name: samples.get(name, {}) for name in COUNTS}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def restart(settings: Settings, tmp: Path, tree: str | None) -> tuple[float, float, Worker]:
    """Seconds from starting a worker (from ``tree``, if given) to healthy, and its CPU
    seconds by then."""
    env = {"OPS_LOG_LEVEL": "WARNING"}
    if tree:
        env["PYTHONPATH"] = tree
    worker = Worker(settings, free_port(), tmp / f"worker-{uuid.uuid4().hex[:6]}.log", env=env)
    started = time.perf_counter()
    worker.start().wait_healthy(timeout_s=3600)
    took = time.perf_counter() - started
    assert worker.proc is not None
    return took, cpu_seconds(worker.proc.pid), worker


def empty_start(settings: Settings, tmp: Path, tree: str | None) -> float:
    """Seconds from start to healthy for a worker with nothing to restore (fresh topics)."""
    empty = settings.model_copy(update={"topic_prefix": f"benchempty{uuid.uuid4().hex[:6]}."})
    ensure_topics(empty)
    took, _, worker = restart(empty, tmp, tree)
    worker.stop()
    return took


def main() -> None:
    total = bench.env_int("BENCH_EVENTS", 200_000)
    runs = bench.env_int("BENCH_RUNS", 3)
    trees = dict(
        pair.split("=", 1) for pair in os.environ.get("RESTORE_TREES", "").split(",") if pair
    ) or {"this": ""}
    tmp = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    with bench.broker() as bootstrap:
        settings = bench.bench_topics(bootstrap, total)
        with bench.replaying(settings, tmp, {"OPS_LOG_LEVEL": "WARNING"}) as first:
            seconds = bench.wait_committed(settings, total)
            want = wait_for(
                lambda: (s := exported(first)) and bench.counted(s) == total and s,
                timeout_s=60,
                what=f"/metrics to account for all {total} messages",
            )
        records = changelog_records(settings)
        held = sum(records.values())
        print(f"replayed {total:,} events in {seconds:.0f} s; changelogs hold {held:,} records")
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for run in range(runs):
            order = list(trees) if run % 2 == 0 else list(reversed(trees))
            for name in order:
                start = empty_start(settings, tmp, trees[name] or None)
                took, cpu, worker = restart(settings, tmp, trees[name] or None)
                try:
                    got = exported(worker)
                finally:
                    worker.stop()
                if got != want:
                    raise SystemExit(
                        f"{name}: the restored worker's counts differ from the first's"
                    )
                rows[name].append(
                    {
                        "seconds": took,
                        "cpu_s": cpu,
                        "records_per_s": held / took,
                        "empty_start_s": start,
                        "restore_s": took - start,
                    }
                )
                print(
                    f"run {run + 1}/{runs} {name}: healthy after {took:.1f} s "
                    f"({held / took:,.0f} records/s, {cpu:.1f} CPU s; counts equal); "
                    f"with nothing to restore {start:.1f} s",
                    flush=True,
                )
    summary = {}
    for name, results in rows.items():
        median = statistics.median(r["seconds"] for r in results)
        start = statistics.median(r["empty_start_s"] for r in results)
        summary[name] = {
            "median_seconds": median,
            "records_per_s": held / median,
            "median_empty_start_s": start,
            "runs": results,
        }
        print(
            f"{name:>8}: median {median:.1f} s to healthy ({held / median:,.0f} records/s); "
            f"{start:.1f} s with nothing to restore"
        )
    RESULTS.write_text(
        json.dumps(
            {
                "events": total,
                "changelog_records": records,
                "trees": summary,
                "machine": bench.machine(),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
