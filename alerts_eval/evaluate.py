"""Alert-quality evaluation of ``ReferralSpike``.

Simulated chunks (see :mod:`alerts_eval.engine`) are scored with the numpy
mirror of the rules (:mod:`alerts_eval.mirror`); the mirror is then checked
against the real rule file on a real Prometheus (:func:`conformance`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts_eval.engine import (
    CHUNK_WEEKS,
    EPOCH,
    WARMUP_WEEKS,
    Rule,
    backfill,
    load_alert_rules,
    prometheus_server,
    query_instant,
    workdir,
    write_openmetrics,
)
from alerts_eval.mirror import BoolArray, conditions, firing, step_counts
from alerts_eval.params import LEVELS, WEEK_SECONDS, WINDOWS, YEAR_SECONDS
from alerts_eval.rulegen import ALERTS_FILE, ROOT
from alerts_eval.simulate import SURGES, poisson_times

GRACE = 600
"""A surge counts as detected when an alert fires before its end plus 10 minutes."""
RESULTS_JSON = ROOT / "alerts_eval" / "results.json"
RESULTS_MD = ROOT / "docs" / "alert-quality.md"

TARGETS: dict[str, dict[str, float]] = {
    "false_per_year": {"max": 1.0},
    "plus5_1h": {"detected": 0.99, "within_hours": 1.0},
    "triple_3d": {"detected": 0.95, "median_hours": 24.0},
    "double_7d": {"detected": 0.90},
}


@dataclass(frozen=True)
class Config:
    """What to simulate."""

    years: float
    surges_per_kind: int
    seed: int
    force_per_year: float
    divisions: tuple[str, ...]
    conformance_chunks: int = 2
    conformance_samples: int = 40
    check: bool = True


def load_force_rates(path: Path | None = None) -> tuple[float, tuple[str, ...]]:
    """Yearly referral rate and divisions of the first configured force."""
    import tomllib

    path = path or ROOT / "config" / "forces.toml"
    forces = tomllib.loads(path.read_text(encoding="utf-8"))["forces"]
    first = next(iter(forces.values()))
    return float(first["rates"]["referrals_received"]), tuple(first["divisions"])


def _background(
    rng: np.random.Generator, cfg: Config, end: int
) -> dict[str, npt.NDArray[np.float64]]:
    per_div = cfg.force_per_year / len(cfg.divisions)
    return {d: poisson_times(rng, per_div, 0, end) for d in cfg.divisions}


def _add(
    rng: np.random.Generator,
    base: dict[str, npt.NDArray[np.float64]],
    extra: npt.NDArray[np.float64],
) -> dict[str, npt.NDArray[np.float64]]:
    """Spread extra referrals uniformly over the divisions (a force-wide surge)."""
    names = list(base)
    pick = rng.integers(0, len(names), len(extra))
    return {
        name: np.sort(np.concatenate([base[name], extra[pick == i]]))
        for i, name in enumerate(names)
    }


def _rising(fire: npt.NDArray[np.bool_], lo: int, hi: int) -> int:
    """Alert episodes starting in steps ``[lo, hi)``."""
    prev = np.concatenate([[False], fire[:-1]])
    edges = fire & ~prev
    return int(edges[lo:hi].sum())


def _quantile(values: list[float], q: float) -> float | None:
    return float(np.quantile(values, q)) if values else None


def _level_counts(
    divisions: dict[str, npt.NDArray[np.float64]], per_div: float, step: int, n: int
) -> dict[tuple[str, str], tuple[npt.NDArray[np.int64], float]]:
    """Per-step counter values each level's rules see, with the configured rate:
    the force total (division ``''``) and each division."""
    per = {d: step_counts(np.ceil(t), step, n) for d, t in divisions.items()}
    out = {("force", ""): (np.sum(list(per.values()), axis=0), per_div * len(per))}
    for d, counts in per.items():
        out[("force_division", d)] = (counts, per_div)
    return out


def _mirror(
    divisions: dict[str, npt.NDArray[np.float64]],
    per_div: float,
    rules: list[Rule],
    step: int,
    n: int,
) -> dict[tuple[int, str], BoolArray]:
    """Mirror condition per (rule index, division) -- '' for the force level."""
    by_window: dict[tuple[str, str, str], dict[str, BoolArray]] = {}
    for (level, div), (counts, rate) in _level_counts(divisions, per_div, step, n).items():
        for window in WINDOWS:
            offset = next(lv.z_offset for lv in LEVELS if lv.name == level)
            by_window[(level, div, window.name)] = conditions(counts, rate, window, step, offset)
    out: dict[tuple[int, str], BoolArray] = {}
    for i, rule in enumerate(rules):
        for (level, div, wname), sev in by_window.items():
            if level == rule.labels["level"] and wname == rule.labels["window"]:
                out[(i, div)] = sev[rule.labels["severity"]]
    return out


def conformance(
    chunks: dict[str, dict[str, npt.NDArray[np.float64]]],
    per_div: float,
    rules: list[Rule],
    end: int,
    rng: np.random.Generator,
    samples_per_rule: int,
    tmp: Path,
    workers: int,
) -> dict[str, int]:
    """Check the mirror against the real rule file, run by a real Prometheus.

    The chunks are backfilled with ``promtool tsdb create-blocks-from
    openmetrics``; each rule's ``expr`` (read from the rule file) is queried at
    sampled evaluation times, half of them where the mirror says the condition
    holds; the series returned must be exactly those the mirror predicts.
    """
    step = rules[0].interval
    steps = np.arange(0, end + 1, step, dtype=np.int64)
    om = tmp / "conformance.om"
    divisions = next(iter(chunks.values())).keys()
    n_samples = write_openmetrics(om, chunks, dict.fromkeys(divisions, per_div), end)
    data = tmp / "tsdb"
    if data.exists():
        shutil.rmtree(data)
    backfill(om, data)
    om.unlink()
    mirrored = {f: _mirror(d, per_div, rules, step, len(steps)) for f, d in chunks.items()}
    jobs: list[tuple[Rule, int, set[tuple[str, str]]]] = []
    for r, rule in enumerate(rules):
        cond = {f: {div: arr for (i, div), arr in m.items() if i == r} for f, m in mirrored.items()}
        any_true = np.zeros(len(steps), dtype=bool)
        for per_force in cond.values():
            for arr in per_force.values():
                any_true |= arr
        true_idx = np.flatnonzero(any_true)
        half = samples_per_rule // 2
        picked = list(rng.choice(true_idx, min(half, len(true_idx)), replace=False))
        picked += list(rng.integers(0, len(steps), samples_per_rule - len(picked)))
        for i in sorted(set(int(p) for p in picked)):
            expected = {(f, d) for f, per in cond.items() for d, arr in per.items() if arr[i]}
            jobs.append((rule, int(steps[i]), expected))
    mismatches = 0
    positives = 0
    with prometheus_server(data, tmp) as url:

        def check(job: tuple[Rule, int, set[tuple[str, str]]]) -> bool:
            rule, t, expected = job
            got = {
                (r["metric"]["force"], r["metric"].get("division", ""))
                for r in query_instant(url, rule.expr, EPOCH + t)
            }
            return got == expected

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for ok, job in zip(pool.map(check, jobs), jobs, strict=True):
                positives += bool(job[2])
                if not ok:
                    mismatches += 1
    return {
        "forces": len(chunks),
        "samples_backfilled": n_samples,
        "queries": len(jobs),
        "queries_with_alerts": positives,
        "mismatches": mismatches,
    }


def run(cfg: Config, keep_dir: Path | None = None, workers: int = 2) -> dict[str, Any]:
    """Simulate, evaluate the rules, check the mirror against Prometheus."""
    started = time.monotonic()
    rng = np.random.default_rng(cfg.seed)
    end = CHUNK_WEEKS * WEEK_SECONDS
    warm = WARMUP_WEEKS * WEEK_SECONDS
    scored_weeks = CHUNK_WEEKS - WARMUP_WEEKS
    n_clean = math.ceil(cfg.years * YEAR_SECONDS / (scored_weeks * WEEK_SECONDS))
    per_div = cfg.force_per_year / len(cfg.divisions)
    rules = load_alert_rules(ALERTS_FILE, "ReferralSpike")
    step = rules[0].interval
    if any(r.interval != step for r in rules):
        raise RuntimeError("all ReferralSpike groups must share one interval")
    n = end // step + 1
    warm_step = warm // step

    def fire_of(divisions: dict[str, npt.NDArray[np.float64]], upto: int = n) -> BoolArray:
        out = np.zeros(upto, dtype=bool)
        for (i, _div), arr in _mirror(divisions, per_div, rules, step, upto).items():
            out |= firing(arr, step, rules[i].hold, rules[i].keep)
        return out

    sample_chunks: dict[str, dict[str, npt.NDArray[np.float64]]] = {}
    false_eps = fallback_eps = 0
    for i in range(n_clean):
        divisions = _background(rng, cfg, end)
        fire = fire_of(divisions)
        false_eps += _rising(fire, warm_step, n)
        fallback_eps += _rising(fire, 0, warm_step)
        if i < cfg.conformance_chunks:
            sample_chunks[f"clean-{i:03d}"] = divisions
    clean_years = n_clean * scored_weeks * WEEK_SECONDS / YEAR_SECONDS
    fallback_years = n_clean * warm / YEAR_SECONDS
    scenarios: dict[str, Any] = {}
    for surge in SURGES:
        delays: list[float] = []
        for i in range(cfg.surges_per_kind):
            start = float(warm + rng.uniform(0, WEEK_SECONDS))
            divisions = _add(
                rng, _background(rng, cfg, end), surge.times(rng, cfg.force_per_year, start)
            )
            if i < cfg.conformance_chunks:
                sample_chunks[f"{surge.name.replace('_', '-')}-{i:03d}"] = divisions
            lo = math.ceil(start / step)
            hi = min(n, int((start + surge.seconds + GRACE) // step) + 1)
            fire = fire_of(divisions, hi)
            hits = np.flatnonzero(fire[lo:hi])
            if len(hits):
                delays.append(((lo + hits[0]) * step - start) / 3_600)
        total = cfg.surges_per_kind
        scenarios[surge.name] = {
            "description": surge.description,
            "surges": total,
            "detected_share": len(delays) / total,
            "delay_hours_median": _quantile(delays, 0.5),
            "delay_hours_p90": _quantile(delays, 0.9),
            "detected_within_1h_share": sum(d <= 1.0 for d in delays) / total,
        }
    simulated = time.monotonic() - started
    check: dict[str, int] = {"queries": 0, "queries_with_alerts": 0, "mismatches": 0}
    if cfg.check:
        with workdir(keep_dir) as tmp:
            check = conformance(
                sample_chunks, per_div, rules, end, rng, cfg.conformance_samples, tmp, workers
            )
    if check["mismatches"]:
        raise RuntimeError(f"the numpy mirror disagrees with the rule file: {check}")
    return {
        "config": {
            "simulated_years_clean": round(clean_years, 2),
            "force_referrals_per_year": cfg.force_per_year,
            "divisions": list(cfg.divisions),
            "surges_per_kind": cfg.surges_per_kind,
            "seed": cfg.seed,
            "chunk_weeks": CHUNK_WEEKS,
            "warmup_weeks": WARMUP_WEEKS,
            "step_seconds": step,
            "rules": len(rules),
        },
        "false_alerts_per_year": false_eps / clean_years,
        "false_alert_episodes": false_eps,
        "false_alerts_per_year_fallback": fallback_eps / fallback_years,
        "fallback_years": round(fallback_years, 2),
        "scenarios": scenarios,
        "conformance": check,
        "runtime_seconds": {
            "simulation": round(simulated, 1),
            "total": round(time.monotonic() - started, 1),
        },
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def to_markdown(res: dict[str, Any]) -> str:
    """The results as the markdown page ``docs/alert-quality.md``."""
    cfg = res["config"]
    sc = res["scenarios"]
    ok = "meets target"
    miss = "**misses target**"
    rows = [
        "| scenario | target | measured | verdict |",
        "|---|---|---|---|",
        (
            f"| no surge (4-week baseline) | <= 1 false alert/year | "
            f"{_fmt(res['false_alerts_per_year'])}/year "
            f"({res['false_alert_episodes']} in {cfg['simulated_years_clean']} years"
            ") | "
            f"{ok if res['false_alerts_per_year'] <= 1.0 else miss} |"
        ),
        (
            f"| no surge, first 5 weeks (configured-rate fallback) | - | "
            f"{_fmt(res['false_alerts_per_year_fallback'])}/year "
            f"(over {res['fallback_years']} years) | informative |"
        ),
    ]
    p5, t3, d7, t6 = sc["plus5_1h"], sc["triple_3d"], sc["double_7d"], sc["triple_6h"]
    rows.append(
        f"| +5 referrals within 1 hour | >= 99% detected within the hour | "
        f"{_fmt(100 * p5['detected_share'], 1)}% by the end of the hour + 10 min "
        f"({_fmt(100 * p5['detected_within_1h_share'], 1)}% within 60 min of its start; "
        f"the 5th referral often arrives in the last minutes); delay median "
        f"{_fmt(60 * (p5['delay_hours_median'] or 0), 0)} min, p90 "
        f"{_fmt(60 * (p5['delay_hours_p90'] or 0), 0)} min | "
        f"{ok if p5['detected_share'] >= 0.99 else miss} |"
    )
    t3_ok = t3["detected_share"] >= 0.95 and (t3["delay_hours_median"] or 1e9) < 24
    rows.append(
        f"| triple rate for 3 days | >= 95% detected, median delay < 24 h | "
        f"{_fmt(100 * t3['detected_share'], 1)}%; delay median "
        f"{_fmt(t3['delay_hours_median'], 1)} h, p90 {_fmt(t3['delay_hours_p90'], 1)} h | "
        f"{ok if t3_ok else miss} |"
    )
    rows.append(
        f"| double rate for 7 days | >= 90% detected | "
        f"{_fmt(100 * d7['detected_share'], 1)}%; delay median "
        f"{_fmt(d7['delay_hours_median'], 1)} h, p90 {_fmt(d7['delay_hours_p90'], 1)} h | "
        f"{ok if d7['detected_share'] >= 0.90 else miss} |"
    )
    rows.append(
        f"| triple rate for 6 hours (about 2 extra) | none (not detectable) | "
        f"{_fmt(100 * t6['detected_share'], 1)}%; delay median "
        f"{_fmt(t6['delay_hours_median'], 1)} h | informative |"
    )
    return (
        "# ReferralSpike alert quality\n\n"
        "Generated by `python -m alerts_eval run` (`make eval-alerts`); do not edit.\n"
        "The conditions of `prometheus/rules/referral_alerts.yml` are computed by a\n"
        "numpy mirror (long PromQL over years at a 1-minute step is too slow for CI),\n"
        "and the mirror is checked against the real rule file run by a real Prometheus\n"
        "on a TSDB backfilled with `promtool tsdb create-blocks-from openmetrics`\n"
        f"({res['conformance']['queries']} instant queries, "
        f"{res['conformance']['queries_with_alerts']} with alerts, "
        f"{res['conformance']['mismatches']} mismatches).\n"
        "`for` and `keep_firing_for` are applied as the rule manager does.\n"
        "All of a force's alerts count together (force and division level, warning\n"
        "and critical, all windows). Method and caveats: `docs/alerts.md`.\n\n"
        f"Force rate {cfg['force_referrals_per_year']:.0f} referrals/year over "
        f"{len(cfg['divisions'])} divisions, daily and weekly seasonality; "
        f"{cfg['simulated_years_clean']} simulated years without surges, "
        f"{cfg['surges_per_kind']} surges of each kind (spread over the divisions); "
        f"seed {cfg['seed']}; runtime {res['runtime_seconds']['total']:.0f} s.\n\n"
        + "\n".join(rows)
        + "\n"
    )


def write_results(res: dict[str, Any], json_path: Path, md_path: Path) -> None:
    """Write ``results.json`` and the markdown table."""
    json_path.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(to_markdown(res), encoding="utf-8")
