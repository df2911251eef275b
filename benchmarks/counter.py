"""`make bench-counter`: what ``EventCounter.handle_batch`` costs per event, in process.

No Kafka: an :class:`~streams.counter.EventCounter` (dict tables, a
:class:`~streams.view.CountsView` mirror with its window sums bound, as in the worker
after its first scrape) counts BENCH_EVENTS (default 100,000) messages made as
`make bench` makes them (benchmarks/memory.py: the simulator's mix for 5 forces x 10
divisions over 30 days, 0.5% duplicates, 0.05% junk, on their home partition of 6), in
batches of 2,000. Each pass starts from empty tables; the generated messages are cached
in .run/ (generating 100,000 takes about 15 s).

Prints events/s and µs/event of each of BENCH_RUNS (default 5) passes and their median,
and a digest of everything written (counts, ``seen``, outcomes), which must not change
with an optimisation.

- ``BENCH_PROFILE=1``: one pass under pyinstrument, its profile printed.
- ``COUNTER_BASE=<dir>``: compare with another tree of this project (e.g. a
  ``git archive`` of the base commit): BENCH_RUNS rounds, each one process per tree in
  alternating order (the machine is shared: compare the ratios of each round); the
  digests must be equal.

Usage: .venv/bin/python -m benchmarks.counter      (or: make bench-counter)
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TREE = HERE.parent
FORCES = HERE / "forces.toml"
CACHE = TREE / ".run"
BATCH = 2000


def _cached_messages(total: int) -> Path:
    """The path of a pickle of ``total`` generated messages (made once)."""
    path = CACHE / f"bench-counter-{total}.pickle"
    if not path.exists():
        from benchmarks.memory import messages
        from opsmetrics.settings import Settings

        t = time.perf_counter()
        msgs = messages(Settings(topic_prefix="bench.", forces_file=FORCES), total)
        CACHE.mkdir(exist_ok=True)
        with open(path.with_suffix(".tmp"), "wb") as f:
            pickle.dump([tuple(m) for m in msgs], f)
        path.with_suffix(".tmp").rename(path)
        print(f"generated {total:,} messages in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def one_pass(path: Path, profile: bool = False) -> tuple[float, float, str]:
    """Count the messages of ``path`` once: (wall s, CPU s, digest of writes and outcomes).

    Imports the project from ``sys.path`` (so from another tree in a child process).
    """
    from datetime import datetime

    from opsmetrics.settings import Settings
    from services.contract.classify import Classifier
    from services.topics import event_topics
    from streams.counter import DictTable, EventCounter, Message, count_lists
    from streams.labels import BY_TYPE
    from streams.view import CountsView, Edges

    settings = Settings(topic_prefix="bench.", forces_file=FORCES)
    with open(path, "rb") as f:
        msgs = [Message(*m) for m in pickle.load(f)]  # noqa: S301 (our own cache)
    codes = {name: BY_TYPE[etype].code for name, etype in event_topics(settings).items()}
    classifier = Classifier.for_prefix(
        settings.topic_prefix, {slug: f.divisions for slug, f in settings.forces.items()}
    )
    view = CountsView()
    partitions = 1 + max(m.partition for m in msgs)
    now: datetime = max(m.stamp for m in msgs)
    # Bind the window sums as the worker's first scrape does: writes then update them.
    view.export(Edges.at(now, settings.tz), {(c, p) for c in codes.values() for p in range(6)})
    counts, seen = DictTable(), DictTable()
    # Count keys reach the view by their parts, as in the worker (trees before session 9
    # have no set_count: COUNTER_BASE may name one).
    by_parts = {"on_count": view.set_count} if hasattr(view, "set_count") else {}
    counter = EventCounter(
        classifier, codes, partitions, counts, seen, settings.tz, on_write=view.set, **by_parts
    )
    digest = hashlib.sha256()
    gc.collect()
    gc.freeze()
    profiler: Any = None
    if profile:
        import pyinstrument

        profiler = pyinstrument.Profiler(interval=0.0005)
        profiler.start()
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(msgs), BATCH):
        # Outcomes are digested and dropped per batch, as the worker drops them.
        for o in counter.handle_batch(msgs[start : start + BATCH]):
            rejection = o.rejection and (o.rejection.reason.value, o.rejection.field)
            digest.update(repr((o.result.value, o.type, rejection, o.event_id)).encode())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if profiler is not None:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False), flush=True)
    gc.unfreeze()
    for key, value in sorted(count_lists(counts.items())):
        digest.update(f"{key}={value}\n".encode())
    for key, value in sorted(seen.items()):
        digest.update(f"{key}=".encode() + bytes(value) + b"\n")
    return wall, cpu, digest.hexdigest()[:16]


def _child(tree: str, path: str) -> None:
    """Run one pass with the project imported from ``tree``; print its result as JSON."""
    sys.path.insert(0, tree)
    wall, cpu, digest = one_pass(Path(path))
    print(json.dumps({"wall": wall, "cpu": cpu, "digest": digest}), flush=True)


def _run_child(tree: Path, path: Path) -> tuple[float, float, str]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(tree), str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return float(result["wall"]), float(result["cpu"]), str(result["digest"])


def _rate(total: int, wall: float, cpu: float) -> str:
    return (
        f"{total / cpu:>7,.0f} ev/s {cpu / total * 1e6:>6.1f} µs/event CPU"
        f" ({wall / total * 1e6:>6.1f} wall)"
    )


def main() -> None:
    """Measure (or profile, or compare) and print."""
    total = int(os.environ.get("BENCH_EVENTS", 100_000))
    runs = int(os.environ.get("BENCH_RUNS", 5))
    path = _cached_messages(total)
    print(f"{total:,} messages, batches of {BATCH:,}; process CPU time (and wall)", flush=True)
    if os.environ.get("BENCH_PROFILE") == "1":
        wall, cpu, digest = one_pass(path, profile=True)
        print(f"profiled pass: {_rate(total, wall, cpu)}  digest {digest}")
        return
    base = os.environ.get("COUNTER_BASE")
    trees = {"this": TREE} if not base else {"base": Path(base).resolve(), "this": TREE}
    names = list(trees)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    digests: dict[str, set[str]] = {name: set() for name in names}
    for i in range(runs):
        line = []
        for name in names if i % 2 == 0 else names[::-1]:
            wall, cpu, digest = _run_child(trees[name], path)
            results[name].append((wall, cpu))
            digests[name].add(digest)
            line.append(f"{name} {cpu / total * 1e6:6.1f} ({wall / total * 1e6:6.1f})")
        ratio = ""
        if base:
            ratio = f"  base/this {results['base'][-1][1] / results['this'][-1][1]:.2f}x"
        print(f"run {i + 1}: {'  '.join(line)} µs/event CPU (wall){ratio}", flush=True)
    for name in names:
        wall = statistics.median(w for w, _ in results[name])
        cpu = statistics.median(c for _, c in results[name])
        print(f"median {name}: {_rate(total, wall, cpu)}")
    print(f"digests: {', '.join(f'{n} {sorted(d)}' for n, d in digests.items())}")
    if base:
        ratios = sorted(b[1] / n[1] for b, n in zip(results["base"], results["this"], strict=True))
        print(f"CPU speed-up per run (sorted): {', '.join(f'{r:.2f}x' for r in ratios)}")
    if len(set().union(*digests.values())) != 1:
        sys.exit("the passes wrote different counts, seen entries or outcomes")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main()
