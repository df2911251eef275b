"""The pipeline's floor: the worker with its counting taken out, beside the limit.

``make bench-floor`` runs, on one broker and the bench's topics, rounds of: the limit
(benchmarks/bench.py), the worker with the counter stubbed (``noop``: a counted outcome
per message, nothing written), the same classifying each message (``classify``), and
the real worker (``full``). It prints events per second and each worker thread's CPU
seconds, and writes ``benchmarks/results/floor.json``. Whatever a counter costs, the
worker cannot beat its ``noop`` rate (docs/performance.md, change 16).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import bench

SITE = Path(__file__).with_name("floor_site")
RESULTS = Path(__file__).with_name("results") / "floor.json"
VARIANTS = ("limit", "noop", "classify", "full")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) per thread of ``pid``, by ``name/tid``."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        out[f"{name}/{task.name}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def run_worker(settings: Any, total: int, tmp: Path, floor: str) -> dict[str, Any]:
    """One worker from the beginning of the topics; timed to every offset committed."""
    env = {"OPS_LOG_LEVEL": "WARNING", "PYTHONPATH": str(SITE), "BENCH_FLOOR": floor}
    with bench.replaying(settings, tmp, env) as worker:
        assert worker.proc is not None
        before = thread_cpu(worker.proc.pid)
        seconds = bench.wait_committed(settings, total)
        after = thread_cpu(worker.proc.pid)
    cpu = {k: round(v - before.get(k, 0.0), 1) for k, v in after.items()}
    return {
        "rate": total / seconds,
        "seconds": seconds,
        "thread_cpu_s": {k: v for k, v in cpu.items() if v >= 0.5},
    }


def main() -> None:
    total = bench.env_int("BENCH_EVENTS", 300_000)
    runs = bench.env_int("BENCH_RUNS", 2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    rows: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with bench.broker() as bootstrap:
        settings = bench.bench_topics(bootstrap, total)
        for run in range(runs):
            for variant in VARIANTS:
                if variant == "limit":
                    result = bench.in_subprocess("limit", bootstrap, settings.topic_prefix, total)
                else:
                    result = run_worker(settings, total, tmp, "" if variant == "full" else variant)
                rows[variant].append(result)
                cpu = result.get("thread_cpu_s", "")
                print(f"run {run + 1}/{runs} {variant}: {result['rate']:,.0f} events/s {cpu}")
    limit = statistics.median(r["rate"] for r in rows["limit"])
    print(f"\n{total:,} events, medians of {runs}")
    summary = {}
    for variant in VARIANTS:
        rate = statistics.median(r["rate"] for r in rows[variant])
        summary[variant] = {"rate": rate, "share_of_limit": rate / limit, "runs": rows[variant]}
        print(f"{variant:>9}: {rate:>9,.0f} events/s  {rate / limit:6.1%} of the limit")
    RESULTS.write_text(json.dumps({"events": total, "variants": summary}, indent=2) + "\n")
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
