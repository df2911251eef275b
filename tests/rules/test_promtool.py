"""Prometheus and Alertmanager configuration checks with promtool and amtool.

These never skip: without the tools they fail and say how to install them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "prometheus" / "rules"
TESTS = Path(__file__).resolve().parent
AM_DIR = ROOT / "alertmanager"
INSTALL = "run `sudo prometheus/install.sh` (Debian packages prometheus, prometheus-alertmanager)"


def tool(name: str) -> str:
    """Path of a required tool, or fail with the install hint."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found on PATH: {INSTALL}")
    return path


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output when it fails."""
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=280, check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_check_rules() -> None:
    files = sorted(str(p) for p in RULES.glob("*.yml"))
    assert len(files) == 3
    run(tool("promtool"), "check", "rules", *files)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.docker.yml"])
def test_check_config(config: str) -> None:
    run(tool("promtool"), "check", "config", str(ROOT / "prometheus" / config))


@pytest.mark.parametrize(
    "test_file", ["referral_alerts_test.yml", "pipeline_alerts_test.yml", "recording_test.yml"]
)
def test_rule_unit_tests(test_file: str) -> None:
    out = run(tool("promtool"), "test", "rules", test_file, cwd=TESTS)
    assert "SUCCESS" in out.stdout


def test_rule_unit_tests_over_weeks(tmp_path: Path) -> None:
    """The multi-week tests run on a copy of the rules evaluated hourly (only change)."""
    text = (RULES / "referral_alerts.yml").read_text(encoding="utf-8")
    hourly, n = re.subn(r"(?m)^    interval: 1m$", "    interval: 1h", text)
    assert n == 2, "expected two referral-spike groups with interval: 1m"
    (tmp_path / "referral_alerts_hourly.yml").write_text(hourly, encoding="utf-8")
    shutil.copy(TESTS / "referral_history_test.yml", tmp_path)
    out = run(tool("promtool"), "test", "rules", "referral_history_test.yml", cwd=tmp_path)
    assert "SUCCESS" in out.stdout


def test_every_alert_has_unit_tests() -> None:
    """Every alert name in the rule files appears in a promtool test file."""
    alerts = set()
    for path in RULES.glob("*.yml"):
        alerts |= set(re.findall(r"(?m)^\s+- alert: (\w+)$", path.read_text(encoding="utf-8")))
    tested = "".join(p.read_text(encoding="utf-8") for p in TESTS.glob("*_test.yml"))
    missing = sorted(a for a in alerts if a not in tested)
    assert not missing, f"alerts without promtool tests: {missing}"


def test_alertmanager_check_config() -> None:
    run(tool("amtool"), "check-config", str(AM_DIR / "alertmanager.yml"))


def test_alertmanager_rendered_default_is_current(tmp_path: Path) -> None:
    out = tmp_path / "alertmanager.yml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPS_ALERT")}
    subprocess.run(
        [sys.executable, str(AM_DIR / "render.py"), "--output", str(out)], env=env, check=True
    )
    assert out.read_text() == (AM_DIR / "alertmanager.yml").read_text(), (
        "alertmanager/alertmanager.yml is stale: run python3 alertmanager/render.py"
    )


def test_alertmanager_render_with_token_and_urls(tmp_path: Path) -> None:
    out = tmp_path / "am.yml"
    env = {
        "OPS_ALERT_WEBHOOK_URL": "https://pager.example.invalid/hook",
        "OPS_ALERT_WEBHOOK_TOKEN_FILE": "/run/secrets/webhook_token",
    }
    subprocess.run(
        [sys.executable, str(AM_DIR / "render.py"), "--output", str(out)], env=env, check=True
    )
    text = out.read_text()
    assert "https://pager.example.invalid/hook" in text
    assert text.count("credentials_file: '/run/secrets/webhook_token'") == 2
    run(tool("amtool"), "check-config", str(out))


@pytest.mark.parametrize(
    ("receiver", "labels"),
    [
        ("ops-critical", ["alertname=ReferralSpike", "severity=critical", "force=lancashire"]),
        ("ops-webhook", ["alertname=ReferralSpike", "severity=warning", "force=lancashire"]),
        ("ops-critical", ["alertname=OpsStreamDown", "severity=critical"]),
        ("ops-webhook", ["alertname=OpsDeadLetters", "severity=warning", "reason=schema"]),
        ("ops-watchdog", ["alertname=Watchdog", "severity=none"]),
        ("ops-webhook", ["alertname=Unknown"]),
    ],
)
def test_alertmanager_routes(receiver: str, labels: list[str]) -> None:
    run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={AM_DIR / 'alertmanager.yml'}",
        f"--verify.receivers={receiver}",
        *labels,
    )
