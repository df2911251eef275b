"""``python -m alerts_eval``: generate the referral rules or measure their quality."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from alerts_eval.evaluate import (
    RESULTS_JSON,
    RESULTS_MD,
    Config,
    load_force_rates,
    run,
    to_markdown,
    write_results,
)
from alerts_eval.rulegen import generated_files, write_rules


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m alerts_eval", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    gen = sub.add_parser(
        "generate-rules", help="write prometheus/rules/{referral_alerts,recording}.yml"
    )
    gen.add_argument("--check", action="store_true", help="fail if the files are not current")
    ev = sub.add_parser("run", help="run the alert-quality evaluation (default)")
    ev.add_argument(
        "--years", type=float, default=30.0, help="simulated years without surges (>= 10)"
    )
    ev.add_argument("--surges", type=int, default=200, help="surges of each kind")
    ev.add_argument(
        "--quick", action="store_true", help="CI mode: 2 years, 30 surges each, a smaller check"
    )
    ev.add_argument("--seed", type=int, default=20250403)
    ev.add_argument(
        "--no-check",
        action="store_true",
        help="skip the check against a real Prometheus (tuning only; results not written)",
    )
    ev.add_argument("--workers", type=int, default=2, help="parallel range queries")
    ev.add_argument("--keep", type=Path, default=None, help="keep the work directory here")
    ev.add_argument("--json", type=Path, default=None, help=f"default {RESULTS_JSON}")
    ev.add_argument("--markdown", type=Path, default=None, help=f"default {RESULTS_MD}")
    args = parser.parse_args(argv)
    if args.command == "generate-rules":
        if args.check:
            stale = [
                str(p)
                for p, text in generated_files().items()
                if not p.exists() or p.read_text(encoding="utf-8") != text
            ]
            if stale:
                print("stale generated rule files: " + ", ".join(stale), file=sys.stderr)
                return 1
            return 0
        for path in write_rules():
            print(f"wrote {path}")
        return 0
    if args.command is None:
        args = parser.parse_args(["run", *(argv if argv is not None else sys.argv[1:])])
    years, surges = (2.0, 30) if args.quick else (args.years, args.surges)
    per_year, divisions = load_force_rates()
    cfg = Config(
        years=years,
        surges_per_kind=surges,
        seed=args.seed,
        force_per_year=per_year,
        check=not args.no_check,
        conformance_chunks=1 if args.quick else 2,
        conformance_samples=10 if args.quick else 40,
        divisions=divisions,
    )
    res = run(cfg, keep_dir=args.keep, workers=args.workers)
    quick = args.quick or args.json or args.markdown or args.no_check
    json_path = args.json or (RESULTS_JSON if not quick else Path("/dev/null"))
    md_path = args.markdown or (RESULTS_MD if not quick else Path("/dev/null"))
    if str(json_path) != "/dev/null":
        write_results(res, json_path, md_path)
    print(to_markdown(res))
    print(json.dumps({k: v for k, v in res.items() if k != "scenarios"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
