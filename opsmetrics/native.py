"""The per-event modules compiled to C with mypyc, and the check that they are current.

The counter's per-event path (parse, classify, count) is plain, typed Python; mypyc
(part of mypy) compiles those modules to C extensions that the import system prefers
over the ``.py`` beside them, about 10% more events a second for a replaying worker
(docs/performance.md, change 25). The sources stay the only code: ``make setup`` compiles
them (``python -m opsmetrics.native build``, needs a C compiler and Python's headers),
``make setup NATIVE=0`` removes the compiled modules, and everything runs as plain
Python (the same results, slower).

A compiled module does not change when its source does, so the packages holding them
call :func:`verify` first: a source edited after its compilation stops the import with
the command that fixes it, instead of silently running the old code.

Compiled code enforces the annotations at run time (a value of the wrong type raises
``TypeError``), calls functions of its own modules directly (patching a module attribute
does not reach them), and its classes cannot be subclassed by interpreted ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
# The compiled modules, in the order mypyc is given them. Not the view, the count store or
# shared_ints: they rely on equal bucket numbers being one int object, and compiled code
# boxes each int it hands back to Python anew.
MODULES: Final = (
    "services/contract/canonical.py",
    "services/contract/classify.py",
    "streams/labels.py",
    "streams/counter.py",
)
GROUP: Final = "streams.native"  # mypyc's shared library: streams/native__mypyc.*.so
BUILD_DIR: Final = ROOT / ".cache" / "native"
MANIFEST: Final = BUILD_DIR / "sources.json"


class StaleNativeModule(ImportError):
    """A compiled module whose source changed after it was compiled."""


def _extensions(source: str) -> list[Path]:
    """The compiled files of ``source`` (``streams/counter.py``) that exist."""
    path = ROOT / source
    return [
        path.with_name(path.stem + suffix)
        for suffix in EXTENSION_SUFFIXES
        if (path.with_name(path.stem + suffix).exists())
    ]


def _group_libraries() -> list[Path]:
    package, _, name = GROUP.rpartition(".")
    folder = ROOT / package.replace(".", "/")
    return sorted(folder.glob(f"{name}__mypyc.*"))


def _fingerprint() -> dict[str, Any]:
    """What the compiled modules were made from: each source's digest, Python, mypy."""
    sources = {m: hashlib.sha256((ROOT / m).read_bytes()).hexdigest() for m in MODULES}
    return {"python": sys.version, "sources": sources}


def compiled() -> list[str]:
    """The modules of :data:`MODULES` that have a compiled file beside their source."""
    return [m for m in MODULES if _extensions(m)]


def stale() -> list[str]:
    """Compiled modules that do not match their source (or Python) as recorded at build."""
    present = compiled()
    if not present:
        return []
    try:
        recorded = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return present
    current = _fingerprint()
    if recorded.get("python") != current["python"]:
        return present
    return [m for m in present if recorded.get("sources", {}).get(m) != current["sources"][m]]


_verified = False


def verify() -> None:
    """Refuse to import a package whose compiled modules are older than their sources."""
    global _verified
    if _verified:
        return
    old = stale()
    if old:
        raise StaleNativeModule(
            f"{', '.join(old)} changed after it was compiled (or was compiled for another "
            f"Python, or {MANIFEST.relative_to(ROOT)} is missing): run `make setup` to "
            "compile it again, or `make setup NATIVE=0` to run it as plain Python"
        )
    _verified = True


def clean() -> list[Path]:
    """Remove every compiled module and the build record; returns the files removed."""
    removed = [p for m in MODULES for p in _extensions(m)] + _group_libraries()
    for path in removed:
        path.unlink()
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    return removed


def build(force: bool = False) -> bool:
    """Compile :data:`MODULES` in place unless they are current; True if it compiled.

    Raises ``SystemExit`` naming the fix when the compiler fails.
    """
    if not force and MANIFEST.exists() and len(compiled()) == len(MODULES) and not stale():
        return False
    clean()
    from mypyc.build import mypycify  # a dev dependency, only needed here
    from setuptools import setup

    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    here = Path.cwd()
    try:
        os.chdir(ROOT)  # mypyc names modules by their paths relative to the project
        extensions = mypycify(
            list(MODULES), group_name=GROUP, target_dir=str(BUILD_DIR / "c"), opt_level="3"
        )
        setup(
            name="opsmetrics-native",
            packages=[],
            py_modules=[],
            ext_modules=extensions,
            script_args=[
                "--quiet",
                "build_ext",
                "--inplace",
                "--build-temp",
                str(BUILD_DIR / "temp"),
                "--build-lib",
                str(BUILD_DIR / "lib"),
            ],
        )
    except (Exception, SystemExit) as exc:  # any failure of mypy or the C compiler
        clean()
        raise SystemExit(
            f"error: compiling {', '.join(MODULES)} with mypyc failed (see above: {exc!r}). "
            "Fix a type error mypy reports there; otherwise install a C "
            "compiler and Python's headers (e.g. the packages gcc and python3-dev), or run "
            "`make setup NATIVE=0` to run them as plain Python."
        ) from exc
    finally:
        os.chdir(here)
    MANIFEST.write_text(json.dumps(_fingerprint(), indent=1) + "\n")
    return True


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m opsmetrics.native build|clean|status``."""
    parser = argparse.ArgumentParser(prog="python -m opsmetrics.native", description=__doc__)
    parser.add_argument("action", choices=("build", "clean", "status"))
    parser.add_argument("--force", action="store_true", help="compile even if current")
    args = parser.parse_args(argv)
    if args.action == "clean":
        removed = clean()
        print(f"native: removed {len(removed)} compiled files; running as plain Python")
    elif args.action == "build":
        did = build(force=args.force)
        print(f"native: {'compiled' if did else 'current'}: {', '.join(MODULES)}")
    else:
        print(json.dumps({"compiled": compiled(), "stale": stale()}))


if __name__ == "__main__":
    main()
