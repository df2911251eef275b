"""Every alert links to a runbook section that exists in docs/alerts.md."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of ``markdown`` (lower case, spaces to -)."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_each_alert_has_a_runbook_section() -> None:
    anchors = _anchors((ROOT / "docs" / "alerts.md").read_text())
    alerts = [
        rule
        for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert len(alerts) >= 10
    missing = []
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        if page != "docs/alerts.md" or anchor not in anchors:
            missing.append(f"{rule['alert']}: {url}")
    assert not missing, f"runbook links without a section in docs/alerts.md: {missing}"
