"""The three dashboards: commander overview, referrals and alerts, pipeline health."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "grafana" / "dashboards"
PROMETHEUS_UID = "ops-prometheus"
ALERTMANAGER_UID = "ops-alertmanager"
PROM = dm.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
SEL = 'force=~"$force", division=~"$division"'

METRICS: tuple[tuple[str, str], ...] = (
    ("Warrants executed", "ops_warrants_executed_window"),
    ("People arrested", "ops_arrests_window"),
    ("Children safeguarded", "ops_children_safeguarded_window"),
    ("Referrals received", "ops_referrals_received_window"),
)
PERIODS: tuple[tuple[str, str, str | None], ...] = (
    ("24h", "last 24 hours", "24h"),
    ("7d", "last 7 days", "7d"),
    ("28d", "last 28 days", "28d"),
    ("fy", "financial year to date", None),
)


@dataclass(frozen=True)
class Query:
    """One panel target."""

    expr: str
    legend: str = ""
    instant: bool = False


def _target(q: Query, ref: str) -> pb.Dataquery:
    t = pb.Dataquery().expr(q.expr).ref_id(ref).datasource(PROM)
    if q.legend:
        t = t.legend_format(q.legend)
    return t.instant() if q.instant else t.range()


def _stat(
    title: str, queries: list[Query], unit: str, desc: str, w: int = 6, h: int = 4
) -> stat.Panel:
    p = stat.Panel().title(title).description(desc).unit(unit).datasource(PROM).span(w).height(h)
    p = p.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    for i, q in enumerate(queries):
        p = p.with_target(_target(q, chr(ord("A") + i)))
    return p


def _ts(title: str, queries: list[Query], unit: str, desc: str, w: int = 12) -> timeseries.Panel:
    p = timeseries.Panel().title(title).description(desc).unit(unit).datasource(PROM).span(w)
    p = p.height(8)
    for i, q in enumerate(queries):
        p = p.with_target(_target(q, chr(ord("A") + i)))
    return p


def _table(title: str, queries: list[Query], unit: str, desc: str, w: int = 12) -> table.Panel:
    p = table.Panel().title(title).description(desc).unit(unit).datasource(PROM).span(w)
    p = p.height(8)
    for i, q in enumerate(queries):
        p = p.with_target(_target(q, chr(ord("A") + i)))
    return p


def _variables(d: db.Dashboard) -> db.Dashboard:
    force = (
        db.QueryVariable("force")
        .label("Force")
        .datasource(PROM)
        .query("label_values(ops_referrals_received_total, force)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    division = (
        db.QueryVariable("division")
        .label("Division")
        .datasource(PROM)
        .query('label_values(ops_referrals_received_total{force=~"$force"}, division)')
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    return d.with_variable(force).with_variable(division)


def _base(uid: str, title: str, desc: str) -> db.Dashboard:
    d = (
        db.Dashboard(title)
        .uid(uid)
        .description(desc)
        .tags(["opsmetrics"])
        .timezone("Europe/London")
        .time("now-7d", "now")
        .refresh("1m")
        .editable()
        .fiscal_year_start_month(3)  # 0-based: April
    )
    return _variables(d)


FIRING = Query(
    'sum by (alertname, severity, force, division, window) (ALERTS{alertstate="firing", '
    'alertname!="Watchdog"})',
    instant=True,
)


def commander() -> db.Dashboard:
    """(a) Commander overview."""
    d = _base(
        "ops-commander",
        "Commander overview",
        "Warrants, arrests, children safeguarded and referrals by period, with the change "
        "against the previous period; breakdowns; firing alerts; data freshness.",
    )
    for label, metric in METRICS:
        d = d.with_row(db.Row(label))
        for window, words, offset in PERIODS:
            cur = f'sum({metric}{{{SEL}, window="{window}"}})'
            queries = [Query(cur, "count", instant=True)]
            if offset:
                prev = f'sum({metric}{{{SEL}, window="{window}"}} offset {offset})'
                queries.append(Query(f"{cur} - {prev}", "change vs previous", instant=True))
                desc = f"{label} in the {words}; change against the {window} before."
            else:
                desc = (
                    f"{label} since 1 April (UK financial year). No previous-year change: "
                    "Prometheus keeps 40 days."
                )
            d = d.with_panel(_stat(f"{label}: {words}", queries, "short", desc))
    d = d.with_row(db.Row("Breakdown (last 28 days)"))
    for label, metric in METRICS:
        d = d.with_panel(
            _ts(
                f"{label} by division (28 days)",
                [Query(f'sum by (division) ({metric}{{{SEL}, window="28d"}})', "{{division}}")],
                "short",
                f"Rolling 28-day {label.lower()} per division.",
                w=6,
            )
        )
    d = d.with_panel(
        _table(
            "Warrants and arrests by origin (28 days)",
            [
                Query(
                    f'sum by (origin) (ops_warrants_executed_window{{{SEL}, window="28d"}})',
                    "warrants {{origin}}",
                    instant=True,
                ),
                Query(
                    f'sum by (origin) (ops_arrests_window{{{SEL}, window="28d"}})',
                    "arrests {{origin}}",
                    instant=True,
                ),
            ],
            "short",
            "Proactive work versus acting on a referral.",
            w=8,
        )
    )
    d = d.with_panel(
        _table(
            "Referrals by referrer (28 days)",
            [
                Query(
                    f'sum by (referrer) (ops_referrals_received_window{{{SEL}, window="28d"}})',
                    "{{referrer}}",
                    instant=True,
                )
            ],
            "short",
            "Who sent the referrals.",
            w=8,
        )
    )
    d = d.with_panel(
        _table(
            "Referrals by risk (28 days)",
            [
                Query(
                    f'sum by (risk) (ops_referrals_received_window{{{SEL}, window="28d"}})',
                    "{{risk}}",
                    instant=True,
                )
            ],
            "short",
            "Risk grading of the referrals.",
            w=8,
        )
    )
    d = d.with_panel(
        _table(
            "Financial year: to date vs last year",
            [
                Query(
                    f"sum by (measure, period) (ops_period_units{{{SEL}}})",
                    "{{measure}} {{period}}",
                    instant=True,
                )
            ],
            "short",
            "This financial year to date, last year to the same date, and last year in full "
            "(from 1 April, in the configured time zone), from the stream's day buckets.",
            w=24,
        )
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="groupingToMatrix",
                options={"columnField": "period", "rowField": "measure", "valueField": "Value"},
            )
        )
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "renameByName": {
                        "measure\\period": "Measure",
                        "fy": "This FY to date",
                        "previous_fy_to_date": "Last FY to same date",
                        "previous_fy": "Last FY (full year)",
                    }
                },
            )
        )
    )
    d = d.with_row(db.Row("Alerts and freshness"))
    d = d.with_panel(
        _table("Firing alerts", [FIRING], "short", "Alerts firing now (Watchdog hidden).", w=12)
    )
    d = d.with_panel(
        _stat(
            "Last event processed (age)",
            [Query("time() - max(ops_last_event_timestamp_seconds)", "age", instant=True)],
            "s",
            "Time since the stream last accepted any event (quiet periods are normal).",
            w=6,
        )
    )
    d = d.with_panel(
        _stat(
            "Worker heartbeat (age)",
            [Query("time() - max(ops_worker_heartbeat_timestamp_seconds)", "age", instant=True)],
            "s",
            "Time since a stream worker last beat: above 2 minutes the numbers are stale.",
            w=6,
        )
    )
    return d


def referrals() -> db.Dashboard:
    """(b) Referrals and alerts."""
    d = _base(
        "ops-referrals",
        "Referrals and alerts",
        "Referral counts per window against the ReferralSpike baseline and threshold.",
    )
    for window in ("1h", "24h", "7d"):
        d = d.with_panel(
            _ts(
                f"Referrals in the last {window}: count, baseline, warning threshold",
                [
                    Query(
                        f"force_division:ops_referrals_received:increase{window}{{{SEL}}}",
                        "{{division}} count",
                    ),
                    Query(
                        f"force_division:ops_referrals_received:baseline{window}{{{SEL}}}",
                        "{{division}} baseline",
                    ),
                    Query(
                        f"force_division:ops_referrals_received:threshold{window}{{{SEL}}}",
                        "{{division}} threshold",
                    ),
                ],
                "short",
                f"ReferralSpike fires (warning) when the count reaches the threshold; "
                f"baseline = same {window} of the previous four weeks blended with the "
                "configured yearly rate (see docs/alerts.md).",
                w=8,
            )
        )
    d = d.with_panel(
        _ts(
            "Referrals per force, last 24h",
            [Query('force:ops_referrals_received:increase24h{force=~"$force"}', "{{force}}")],
            "short",
            "Force-level 24-hour count.",
            w=8,
        )
    )
    d = d.with_panel(
        _table(
            "Referrals by referrer and risk (7 days)",
            [
                Query(
                    f"sum by (referrer, risk) "
                    f'(ops_referrals_received_window{{{SEL}, window="7d"}})',
                    "{{referrer}} {{risk}}",
                    instant=True,
                )
            ],
            "short",
            "Referrals in the last 7 days by referrer and risk.",
            w=8,
        )
    )
    d = d.with_panel(
        _table(
            "ReferralSpike alerts",
            [
                Query(
                    "sum by (force, division, window, severity, alertstate) "
                    '(ALERTS{alertname="ReferralSpike", force=~"$force"})',
                    instant=True,
                )
            ],
            "short",
            "Pending and firing ReferralSpike alerts.",
            w=8,
        )
    )
    d = d.with_panel(
        _ts(
            "Referral spike alerts over time",
            [
                Query(
                    'count by (severity) (ALERTS{alertname="ReferralSpike", '
                    'alertstate="firing", force=~"$force"})',
                    "{{severity}}",
                )
            ],
            "short",
            "Number of firing ReferralSpike alerts by severity.",
            w=12,
        )
    )
    d = d.with_panel(
        _ts(
            "Referrals received (today, calendar)",
            [
                Query(
                    f'sum by (division) (ops_referrals_received_window{{{SEL}, window="today"}})',
                    "{{division}}",
                )
            ],
            "short",
            "Referrals since midnight (Europe/London).",
            w=12,
        )
    )
    return d


# The expression of the OpsPartitionsNotExported alert (prometheus/rules/pipeline_alerts.yml).
PARTITIONS_NOT_EXPORTED = (
    "max(ops_source_partitions)"
    " - (count(count by (partition) (ops_worker_partition_active)) or vector(0))"
)


def pipeline() -> db.Dashboard:
    """(c) Pipeline health."""
    d = _base(
        "ops-pipeline",
        "Pipeline health",
        "Stream workers: scrapes, throughput, rejects, duplicates, lag, heartbeat.",
    )
    panels = [
        _stat(
            "Workers up",
            [Query('sum(up{job="ops-stream"})', "up", instant=True)],
            "short",
            "Stream workers answering scrapes.",
        ),
        _stat(
            "Worker heartbeat age",
            [Query("job:ops_worker_heartbeat_age:seconds", "{{job}}", instant=True)],
            "s",
            "Seconds since the freshest worker heartbeat (alert above 120 s).",
        ),
        _stat(
            "Consumer lag",
            [Query("sum(topic:ops_consumer_lag:sum)", "lag", instant=True)],
            "short",
            "Messages behind the end of the topics.",
        ),
        _stat(
            "Rejected in the last hour",
            [Query("sum(reason:ops_events_rejected:increase1h)", "rejected", instant=True)],
            "short",
            "Messages sent to the dead-letter topic in the last hour.",
        ),
        _stat(
            "Partitions not exported",
            [Query(PARTITIONS_NOT_EXPORTED, "partitions", instant=True)],
            "short",
            "Source partitions whose counts no worker exports: while above 0 the boards' "
            "totals have no data (alert after 10 minutes).",
        ),
        _stat(
            "Workers restoring",
            [Query("sum(ops_worker_recovering)", "restoring", instant=True)],
            "short",
            "Workers restoring their tables after a start or a rebalance (alert after 20 minutes).",
        ),
    ]
    for p in panels:
        d = d.with_panel(p)
    series: list[cogbuilder.Builder[dm.Panel]] = [
        _ts(
            "Events processed per second",
            [Query("type:ops_events_processed:rate5m", "{{type}}")],
            "ops",
            "Accepted events per second by type (5-minute rate).",
        ),
        _ts(
            "Rejected (dead letters) by reason",
            [
                Query(
                    "sum by (reason) (increase(ops_events_rejected_total[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            "short",
            "Rejected messages per interval by reason.",
        ),
        _ts(
            "Duplicates by type",
            [
                Query(
                    "sum by (type) (increase(ops_events_duplicate_total[$__rate_interval]))",
                    "{{type}}",
                )
            ],
            "short",
            "Repeated event ids (counted once).",
        ),
        _ts(
            "Consumer lag by topic",
            [Query("topic:ops_consumer_lag:sum", "{{topic}}")],
            "short",
            "Messages behind the log end, summed over partitions.",
        ),
        _ts(
            "Last accepted event age by type",
            [Query("type:ops_last_event_age:seconds", "{{type}}")],
            "s",
            "Quiet periods are normal for referrals; see the heartbeat for liveness.",
        ),
        _ts(
            "Scrape health",
            [Query('up{job="ops-stream"}', "{{instance}}")],
            "short",
            "1 = scraped, 0 = down.",
        ),
        _table(
            "Firing alerts",
            [FIRING],
            "short",
            "Alerts firing now (Watchdog hidden).",
            w=24,
        ),
    ]
    for panel in series:
        d = d.with_panel(panel)
    return d


DASHBOARDS = {
    "commander-overview": commander,
    "referrals-alerts": referrals,
    "pipeline-health": pipeline,
}


def render(name: str) -> str:
    """One dashboard as provisioning JSON."""
    built = DASHBOARDS[name]().build()
    model = json.loads(json.dumps(built, cls=JSONEncoder))
    next_id = 1
    for panel in model["panels"]:
        panel["id"] = next_id
        next_id += 1
        for inner in panel.get("panels", []):
            inner["id"] = next_id
            next_id += 1
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def rendered() -> dict[Path, str]:
    """Every dashboard file and its expected content."""
    return {OUT_DIR / f"{name}.json": render(name) for name in DASHBOARDS}
