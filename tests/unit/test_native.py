"""The per-event modules compiled with mypyc (opsmetrics/native.py).

They are all compiled (``make setup``) or none (``make setup NATIVE=0``), compiled ones
match their sources, a source edited after its compilation stops the import with the
fix, and the compiled counter counts exactly as the plain Python one does.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from benchmarks import counter as counter_bench
from opsmetrics import native

PACKAGES = ("opsmetrics", "services", "streams", "benchmarks")


def _module_name(source: str) -> str:
    return source.removesuffix(".py").replace("/", ".")


def _plain_copy(dest: Path) -> Path:
    """The project's Python packages without any compiled module."""
    for package in PACKAGES:
        shutil.copytree(
            native.ROOT / package,
            dest / package,
            ignore=shutil.ignore_patterns("*.so", "__pycache__"),
        )
    return dest


def test_modules_are_all_compiled_and_current_or_none() -> None:
    present = native.compiled()
    assert present in ([], list(native.MODULES))
    assert native.stale() == []
    for source in native.MODULES:
        origin = importlib.util.find_spec(_module_name(source)).origin  # type: ignore[union-attr]
        assert origin is not None
        assert origin.endswith(tuple(EXTENSION_SUFFIXES)) == bool(present), origin


def test_a_source_edited_after_compiling_stops_the_import(tmp_path: Path) -> None:
    tree = _plain_copy(tmp_path)
    # A compiled module as the build leaves it: its file beside the source, and the
    # record of the source it was made from. verify() runs before the file is loaded.
    counter = tree / "streams" / "counter.py"
    counter.with_name("counter" + EXTENSION_SUFFIXES[0]).write_bytes(b"")
    manifest = tree / ".cache" / "native" / "sources.json"
    manifest.parent.mkdir(parents=True)
    record = native._fingerprint()  # this tree's sources, as built from
    manifest.write_text(json.dumps(record))
    code = "import streams.counter"
    ok = subprocess.run(
        [sys.executable, "-c", "import opsmetrics.native as n; n.verify()"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    counter.write_text(counter.read_text() + "\n# edited\n")
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, check=False
    )
    assert run.returncode != 0
    assert "StaleNativeModule" in run.stderr
    assert "streams/counter.py changed after it was compiled" in run.stderr
    assert "`make setup`" in run.stderr
    assert "NATIVE=0" in run.stderr
    manifest.unlink()  # no record at all: every compiled module counts as stale
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, check=False
    )
    assert "streams/counter.py changed after it was compiled" in run.stderr


def test_compiled_and_plain_counters_write_the_same(tmp_path: Path) -> None:
    """3,000 generated messages (duplicates, junk) through this tree's counter and a plain
    Python copy's: the same counts, ``seen`` entries and outcomes (benchmarks/counter.py's
    digest)."""
    from benchmarks.memory import messages
    from opsmetrics.settings import Settings

    msgs = messages(Settings(topic_prefix="bench.", forces_file=counter_bench.FORCES), 3000)
    path = tmp_path / "messages.pickle"
    path.write_bytes(pickle.dumps([tuple(m) for m in msgs]))
    plain = _plain_copy(tmp_path / "plain")
    digests = {
        name: counter_bench._run_child(tree, path)[2]
        for name, tree in (("this", native.ROOT), ("plain", plain))
    }
    assert digests["this"] == digests["plain"], digests
