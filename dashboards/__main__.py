"""``python -m dashboards [--check]``: write (or check) grafana/dashboards/*.json."""

from __future__ import annotations

import sys

from dashboards.build import OUT_DIR, rendered


def main(argv: list[str]) -> int:
    """Write the dashboards, or with ``--check`` report stale files."""
    files = rendered()
    if "--check" in argv:
        stale = [str(p) for p, t in files.items() if not p.exists() or p.read_text() != t]
        if stale:
            print("stale dashboards (run python -m dashboards): " + ", ".join(stale))
            return 1
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
