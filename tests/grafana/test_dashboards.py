"""Offline checks of the Grafana provisioning and the generated dashboards."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.build import (
    ALERTMANAGER_UID,
    PARTITIONS_NOT_EXPORTED,
    PROMETHEUS_UID,
    rendered,
)
from dashboards.queries import SUBSTITUTIONS, grafana_panel_queries, iter_panels

ROOT = Path(__file__).resolve().parents[2]
DASH_DIR = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"
CONTRACT_METRICS = {
    "ops_warrants_executed_total",
    "ops_arrests_total",
    "ops_children_safeguarded_total",
    "ops_referrals_received_total",
    "ops_warrants_executed_window",
    "ops_arrests_window",
    "ops_children_safeguarded_window",
    "ops_referrals_received_window",
    "ops_events_processed_total",
    "ops_events_duplicate_total",
    "ops_events_rejected_total",
    "ops_last_event_timestamp_seconds",
}


def _models() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASH_DIR.glob("*.json"))}


def test_committed_json_equals_regeneration() -> None:
    files = rendered()
    assert sorted(files) == sorted(DASH_DIR.glob("*.json"))
    for path, text in files.items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m dashboards"


def test_datasources_have_fixed_uids() -> None:
    data = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    uids = {d["type"]: d["uid"] for d in data["datasources"]}
    assert uids == {"prometheus": PROMETHEUS_UID, "alertmanager": ALERTMANAGER_UID}


def test_dashboard_provider_points_at_the_mount() -> None:
    data = yaml.safe_load((PROVISIONING / "dashboards" / "provider.yml").read_text())
    assert data["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_unique_uids_schema_and_no_sharing_export() -> None:
    models = _models()
    assert len(models) == 3
    uids = [m["uid"] for m in models.values()]
    assert len(set(uids)) == len(uids)
    for name, m in models.items():
        text = (DASH_DIR / name).read_text()
        assert m["schemaVersion"] == 41
        assert "__inputs" not in m, name
        assert "${DS_" not in text, name
        ids = [p["id"] for p in iter_panels(m)]
        assert len(set(ids)) == len(ids), name


def _refs(obj: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(obj, dict):
        if isinstance(obj.get("datasource"), dict):
            found.append(obj["datasource"])
        for v in obj.values():
            found.extend(_refs(v))
    elif isinstance(obj, list):
        for v in obj:
            found.extend(_refs(v))
    return found


def test_datasources_referenced_by_provisioned_uid() -> None:
    for name, m in _models().items():
        refs = _refs(m)
        assert refs, name
        for ref in refs:
            assert ref == {"type": "prometheus", "uid": PROMETHEUS_UID}, (name, ref)


def test_every_panel_has_a_unit_and_a_query() -> None:
    for name, m in _models().items():
        for panel in iter_panels(m):
            if panel["type"] == "row":
                continue
            assert panel["fieldConfig"]["defaults"].get("unit"), (name, panel["title"])
            assert panel.get("targets"), (name, panel["title"])
            assert panel.get("description"), (name, panel["title"])


def test_variables_use_contract_metrics() -> None:
    for name, m in _models().items():
        names = [v["name"] for v in m["templating"]["list"]]
        assert names == ["force", "division"], name
        for var in m["templating"]["list"]:
            metric = re.match(r"label_values\((\w+)", str(var["query"]))
            assert metric, var
            assert metric.group(1) in CONTRACT_METRICS, (name, var["name"])


def test_commander_covers_every_metric_and_period() -> None:
    m = _models()["commander-overview.json"]
    exprs = " ".join(t["expr"] for p in iter_panels(m) for t in p.get("targets", []))
    for metric in ("warrants_executed", "arrests", "children_safeguarded", "referrals_received"):
        for window in ("24h", "7d", "28d", "fy"):
            assert (
                f'ops_{metric}_window{{force=~"$force", division=~"$division", window="{window}"}}'
                in exprs
            )
    for label in ("division", "origin", "referrer", "risk"):
        assert f"by ({label})" in exprs
    assert "ALERTS{" in exprs
    assert "ops_last_event_timestamp_seconds" in exprs


def test_no_unsubstituted_variables() -> None:
    known = {v for v, _ in SUBSTITUTIONS}
    for _, m in _models().items():
        for p in iter_panels(m):
            for t in p.get("targets", []):
                for var in re.findall(r"\$\w+", t["expr"]):
                    assert var in known, var


def test_every_panel_query_parses_with_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: run `sudo prometheus/install.sh`")
    queries = grafana_panel_queries()
    assert len(queries) > 40
    rules = [{"record": f"panel:query:{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_partitions_panel_shows_what_the_alert_fires_on() -> None:
    rules = yaml.safe_load((ROOT / "prometheus" / "rules" / "pipeline_alerts.yml").read_text())
    alert = next(
        r
        for g in rules["groups"]
        for r in g["rules"]
        if r.get("alert") == "OpsPartitionsNotExported"
    )
    expr = " ".join(alert["expr"].split())
    assert expr == f"{PARTITIONS_NOT_EXPORTED} > 0"
    pipeline = _models()["pipeline-health.json"]
    exprs = [t["expr"] for p in iter_panels(pipeline) for t in p.get("targets", [])]
    assert PARTITIONS_NOT_EXPORTED in exprs
