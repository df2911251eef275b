#!/usr/bin/env python3
"""Render alertmanager.yml from alertmanager.yml.tmpl and the environment.

Standard library only (it also runs in a bare python image). ``${NAME:-default}``
is replaced by the environment variable NAME or the default; a line ending in
``#if NAME`` is kept (without the marker) only when NAME is set and non-empty.

Usage: python3 alertmanager/render.py [--template T] [--output O]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::-([^}]*))?\}")
COND = re.compile(r"\s+#if ([A-Z][A-Z0-9_]*)\s*$")


def render(template: str, env: Mapping[str, str]) -> str:
    """Substitute variables and drop conditional lines whose variable is empty."""
    lines: list[str] = []
    for line in template.splitlines():
        cond = COND.search(line)
        if cond:
            if not env.get(cond.group(1)):
                continue
            line = line[: cond.start()]
        missing: list[str] = []

        def sub(match: re.Match[str], missing: list[str] = missing) -> str:
            name, default = match.group(1), match.group(2)
            value = env.get(name)
            if value:
                if "'" in value or "\n" in value:
                    raise ValueError(f"{name} must not contain quotes or newlines")
                return value
            if default is None:
                missing.append(name)
                return ""
            return default

        line = VAR.sub(sub, line)
        if missing:
            raise ValueError(f"set {', '.join(missing)} (no default)")
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--template", type=Path, default=HERE / "alertmanager.yml.tmpl")
    parser.add_argument("--output", type=Path, default=HERE / "alertmanager.yml")
    args = parser.parse_args(argv)
    try:
        text = render(args.template.read_text(encoding="utf-8"), os.environ)
    except ValueError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    header = "# RENDERED from alertmanager.yml.tmpl by render.py: edit the template.\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(header + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
