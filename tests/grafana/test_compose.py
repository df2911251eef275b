"""Static checks of docker-compose.yml, .env.example and the Dockerfile (no engine here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_every_published_port_is_loopback() -> None:
    for name, svc in _compose()["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_worker_is_scalable_and_discovered_by_dns() -> None:
    worker = _compose()["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    prom = yaml.safe_load((ROOT / "prometheus" / "prometheus.docker.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "ops-stream")
    assert job["dns_sd_configs"][0]["names"] == ["worker"]


def test_grafana_is_locked_down_and_provisioned() -> None:
    grafana = _compose()["services"]["grafana"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    mounts = " ".join(grafana["volumes"])
    assert "./grafana/provisioning:/etc/grafana/provisioning" in mounts
    assert "./grafana/dashboards:/var/lib/grafana/dashboards" in mounts


def test_healthchecks_and_dependency_conditions() -> None:
    services = _compose()["services"]
    for name in ("kafka", "worker", "alertmanager", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert cond["condition"] in {"service_healthy", "service_completed_successfully"}, (
                name,
                dep,
            )


def test_env_example_has_no_real_secret_and_env_is_ignored() -> None:
    example = (ROOT / ".env.example").read_text()
    assert "GRAFANA_ADMIN_PASSWORD=change-me" in example
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_dockerfile_uses_frozen_lock_and_entrypoint() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("# ")
    assert "FROM python:3.11-slim" in text
    assert "uv sync --frozen" in text
    assert 'ENTRYPOINT ["opsmetrics"]' in text
