"""Allocator statistics of a running worker, for `make bench-rss` (``RSS_PROBE=1``).

A process started with this directory on ``PYTHONPATH`` and ``MEMPROBE_DIR`` set answers
the signal ``SIGNAL`` (a real-time signal: Faust's worker takes SIGUSR1 and SIGUSR2) by
writing ``<MEMPROBE_DIR>/stats-<pid>.json``: the process status (RSS, peak), pymalloc's arenas
(``sys._debugmallocstats``: arenas, bytes in live blocks, free blocks and pools), glibc's
heap (``mallinfo2``: bytes obtained, live, free; per-arena ``malloc_stats``) and the RSS
after ``malloc_trim(0)`` (glibc's free pages given back). With ``PYTHONTRACEMALLOC`` set
it also dumps a ``tracemalloc`` snapshot to ``snapshot-<pid>.bin``. Not imported by the
worker otherwise; docs/performance.md, "Round 3", has what it found. It starts no
thread: a thread's first ``malloc`` would give it a glibc arena of its own, which the
worker's Kafka thread could then share, and that arena is one of the things measured.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import sys
import tracemalloc
from pathlib import Path
from typing import Any

_FIELDS: tuple[str, ...] = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks")
_FIELDS += ("fsmblks", "uordblks", "fordblks", "keepcost")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]


def _status() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, VmData of this process in kB."""
    out = {}
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "VmData"):
            out[name] = int(value.split()[0])
    return out


def _stderr_of(call: Any, path: Path) -> str:
    """What ``call()`` writes on file descriptor 2 (C-level statistics)."""
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        call()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    text = path.read_text()
    path.unlink()
    return text


def _number(text: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)}\s*=\s*([\d,]+)", text)
    return int(match.group(1).replace(",", "")) if match else -1


def stats(directory: Path) -> dict[str, Any]:
    """Everything above, as a dict."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    out: dict[str, Any] = {"status": _status()}
    if tracemalloc.is_tracing():
        out["traced"] = tracemalloc.get_traced_memory()[0]
        out["tracemalloc_own"] = tracemalloc.get_tracemalloc_memory()
        tracemalloc.take_snapshot().dump(str(directory / f"snapshot-{os.getpid()}.bin"))
    scratch = directory / f"stderr-{os.getpid()}.txt"
    pymalloc = _stderr_of(sys._debugmallocstats, scratch)
    out["pymalloc"] = {
        "arenas_bytes": _number(pymalloc, "bytes/arena"),
        "live_blocks_bytes": _number(pymalloc, "# bytes in allocated blocks"),
        "free_blocks_bytes": _number(pymalloc, "# bytes in available blocks"),
        "free_pools_bytes": _number(pymalloc, "unused pools * 16384 bytes"),
    }
    info = libc.mallinfo2()
    out["glibc"] = {name: getattr(info, name) for name in _FIELDS}
    out["glibc_arenas"] = [
        {"system": int(system), "in_use": int(in_use)}
        for system, in_use in re.findall(
            r"Arena \d+:\nsystem bytes\s*=\s*(\d+)\nin use bytes\s*=\s*(\d+)",
            _stderr_of(libc.malloc_stats, scratch),
        )
    ]
    libc.malloc_trim(0)
    out["status_after_malloc_trim"] = _status()
    return out


SIGNAL: int = signal.SIGRTMIN + 3


def _on_signal(signum: int, frame: Any) -> None:
    directory = Path(os.environ["MEMPROBE_DIR"])
    target = directory / f"stats-{os.getpid()}.json"
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps(stats(directory), indent=1))
    partial.rename(target)


if os.environ.get("MEMPROBE_DIR"):
    signal.signal(SIGNAL, _on_signal)
