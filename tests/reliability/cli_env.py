"""One scenario's settings as an environment, and running the real ``opsmetrics`` command.

Used by the replay, SASL and personal-data scenarios: every process they start (workers,
the CLI) reads its configuration from ``OPS_*`` variables, as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsmetrics.settings import Settings
from services.simulator import Simulator
from tests.reliability import common

#: One force with three divisions: small label sets, quick scrapes.
FORCE = "lancashire"
RATES = {
    "referrals_received": 20_000.0,
    "warrants_executed": 3_000.0,
    "arrests": 3_000.0,
    "children_safeguarded": 3_000.0,
}


def write_forces(path: Path, divisions: dict[str, list[str]]) -> Path:
    """A forces TOML with these forces (slug -> divisions) and dense simulator rates."""
    named = {slug: (f"{slug.title()} Police", divs) for slug, divs in divisions.items()}
    return common.write_forces(path, named, RATES)


def security_env(settings: Settings) -> dict[str, str]:
    """The ``OPS_KAFKA_*`` security variables of ``settings`` (empty for plaintext)."""
    env = {"OPS_KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism:
        password = settings.kafka_sasl_password
        env |= {
            "OPS_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
            "OPS_KAFKA_SASL_USERNAME": settings.kafka_sasl_username or "",
            "OPS_KAFKA_SASL_PASSWORD": password.get_secret_value() if password else "",
        }
    return env


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The process environment that makes ``opsmetrics`` load ``settings``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPS_")},
        "OPS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "OPS_TOPIC_PREFIX": settings.topic_prefix,
        "OPS_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "OPS_FORCES_FILE": str(settings.forces_file),
        "OPS_DATA_DIR": str(settings.data_dir),
        "OPS_LOG_FORMAT": "json",
        "OPS_KAFKA_REQUEST_TIMEOUT_S": str(settings.kafka_request_timeout_s),
        **security_env(settings),
        **extra,
    }


@dataclass(frozen=True)
class Run:
    """A finished ``opsmetrics`` command."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


def opsmetrics(settings: Settings, *args: str, timeout_s: float = 120, **env: str) -> Run:
    """Run ``opsmetrics ARGS`` as a separate process; fail the test if it outlives timeout_s."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "opsmetrics.cli", *args],
        env=environment(settings, **env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def recent_events(settings: Settings, n: int, seed: int) -> list[Any]:
    """``n`` simulated events of the configured forces, the last one two minutes ago."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    sim = Simulator(settings.forces, seed=seed, tz_name=settings.timezone)
    span = timedelta(days=7)
    while True:
        events = list(sim.generate(end - span, end))
        if len(events) >= n:
            return events[-n:]
        span *= 2
