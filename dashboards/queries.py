"""Every panel query of the generated dashboards, ready to run against Prometheus."""

from __future__ import annotations

import json
from typing import Any

from dashboards.build import DASHBOARDS, render

SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("$__rate_interval", "5m"),
    ("$__interval", "1m"),
    ("$__range", "1h"),
    ("$force", ".*"),
    ("$division", ".*"),
)


def substitute(expr: str) -> str:
    """Replace Grafana variables by values valid in PromQL (``=~".*"`` for all)."""
    for var, value in SUBSTITUTIONS:
        expr = expr.replace(var, value)
    return expr


def dashboard_models() -> dict[str, dict[str, Any]]:
    """The generated dashboards as JSON objects, by uid."""
    out: dict[str, dict[str, Any]] = {}
    for name in DASHBOARDS:
        model: dict[str, Any] = json.loads(render(name))
        out[str(model["uid"])] = model
    return out


def iter_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    """All panels, including those nested in collapsed rows."""
    panels: list[dict[str, Any]] = []
    for panel in model.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def grafana_panel_queries() -> list[tuple[str, str]]:
    """``("<dashboard uid>/<panel title>", PromQL)`` for every panel target."""
    out: list[tuple[str, str]] = []
    for uid, model in dashboard_models().items():
        for panel in iter_panels(model):
            for target in panel.get("targets", []):
                if "expr" in target:
                    out.append((f"{uid}/{panel['title']}", substitute(str(target["expr"]))))
    return out
