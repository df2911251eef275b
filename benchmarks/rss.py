"""`make bench-rss`: the real worker's RSS over time while it counts a backlog.

Starts a broker (or uses OPS_KAFKA_BOOTSTRAP), fills the bench's topics with
BENCH_EVENTS (default 200,000) messages as `make bench` does, then for each variant in
RSS_VARIANTS (comma-separated, default ``base``) runs one worker from the beginning and
samples its VmRSS every RSS_SAMPLE_S seconds. A variant is ``name`` or
``name:KEY=VALUE;KEY=VALUE`` (environment of the worker, e.g. ``arena2:MALLOC_ARENA_MAX=2``).
Prints, per variant: RSS of the idle worker once healthy, RSS at each 10% of the
backlog committed, peak (VmHWM) and the rate. With ``RSS_PROBE=1`` each worker also
runs benchmarks/memprobe (its ``sitecustomize``) and, once the backlog is committed,
prints where its heap is: pymalloc's arenas (live and free bytes), glibc's heap (live,
free, per arena) and the RSS after ``malloc_trim(0)``.

Usage: RSS_VARIANTS='base,arena2:MALLOC_ARENA_MAX=2' .venv/bin/python -m benchmarks.rss
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

from benchmarks.bench import (
    bench_topics,
    broker,
    committed_total,
    env_int,
    reset_worker_state,
)
from opsmetrics.settings import Settings
from stack.kafka import free_port
from tests.workers import Worker


def status_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in kB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


PROBE_DIR = Path(__file__).parent / "memprobe"
SIGNAL = signal.SIGRTMIN + 3  # benchmarks/memprobe/sitecustomize.py


def probe_summary(pid: int, directory: Path) -> str:
    """Ask the worker's memprobe for its allocator statistics; one line."""
    os.kill(pid, SIGNAL)
    result = directory / f"stats-{pid}.json"
    deadline = time.monotonic() + 120
    while not result.exists():
        if time.monotonic() > deadline:
            return "probe: no answer in 120 s"
        time.sleep(0.5)
    s = json.loads(result.read_text())
    py, libc = s["pymalloc"], s["glibc"]
    py_free = py["free_blocks_bytes"] + py["free_pools_bytes"]
    heap, live = libc["arena"] + libc["hblkhd"], libc["uordblks"] + libc["hblkhd"]
    free = libc["fordblks"]
    arenas = " ".join(f"{a['system'] / 1e6:.0f}/{a['in_use'] / 1e6:.0f}" for a in s["glibc_arenas"])
    before, after = s["status"]["VmRSS"] / 1024, s["status_after_malloc_trim"]["VmRSS"] / 1024
    return (
        f"  pymalloc arenas {py['arenas_bytes'] / 1e6:.0f} MB (live blocks"
        f" {py['live_blocks_bytes'] / 1e6:.0f}, free {py_free / 1e6:.0f})"
        f"  glibc heap {heap / 1e6:.0f} MB (live {live / 1e6:.0f}, free {free / 1e6:.0f};"
        f" per arena system/live {arenas})  RSS {before:.0f} -> {after:.0f} MB after malloc_trim"
    )


def run_variant(settings: Settings, total: int, tmp: Path, name: str, env: dict[str, str]) -> str:
    """One worker over the whole backlog; a one-line summary."""
    reset_worker_state(settings)
    probe = os.environ.get("RSS_PROBE") == "1"
    if probe:
        probe_dir = tmp / f"probe-{name}"
        probe_dir.mkdir(exist_ok=True)
        env = {"PYTHONPATH": str(PROBE_DIR), "MEMPROBE_DIR": str(probe_dir), **env}
    worker = Worker(
        settings,
        free_port(),
        tmp / f"worker-{name}-{uuid.uuid4().hex[:4]}.log",
        env={"OPS_LOG_LEVEL": "WARNING", **env},
    )
    worker.start().wait_healthy(timeout_s=180)
    assert worker.proc is not None
    pid = worker.proc.pid
    idle = status_kb(pid, "VmRSS") / 1024
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    gap = float(os.environ.get("RSS_SAMPLE_S", "0.5"))

    def sample() -> None:
        t0 = time.perf_counter()
        while not stop.is_set():
            samples.append((time.perf_counter() - t0, status_kb(pid, "VmRSS") / 1024))
            stop.wait(gap)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    marks: list[str] = []
    try:
        next_mark = 0.1
        while (done := committed_total(settings)) < total:
            if done / total >= next_mark:
                marks.append(f"{int(next_mark * 100)}%:{status_kb(pid, 'VmRSS') // 1024}")
                next_mark += 0.1
            time.sleep(1.0)
        seconds = time.perf_counter() - started
        final = status_kb(pid, "VmRSS") / 1024
        peak = status_kb(pid, "VmHWM") / 1024
        probed = probe_summary(pid, probe_dir) if probe else ""
    finally:
        stop.set()
        thread.join()
        worker.stop()
    peak_sampled = max(r for _, r in samples) if samples else 0.0
    return (
        f"{name:<14} idle {idle:6.0f} MB  end {final:6.0f} MB  peak(VmHWM) {peak:6.0f} MB"
        f"  sampled max {peak_sampled:6.0f}  rate {total / seconds:7.0f} ev/s  [{' '.join(marks)}]"
        + (f"\n{probed}" if probed else "")
    )


def main() -> None:
    """Run every variant on one broker and print the summaries."""
    total = env_int("BENCH_EVENTS", 200_000)
    variants = os.environ.get("RSS_VARIANTS", "base").split(",")
    tmp = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    with broker() as bootstrap:
        settings = bench_topics(bootstrap, total)
        for variant in variants:
            name, _, spec = variant.partition(":")
            env = dict(kv.split("=", 1) for kv in spec.split(";") if kv)
            print(run_variant(settings, total, tmp, name, env), flush=True)


if __name__ == "__main__":
    main()
