"""A bad configuration stops start-up with the file, the key and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opsmetrics.settings import (
    DEFAULT_FORCES_FILE,
    ConfigError,
    Settings,
    load_forces,
    load_settings,
)


def test_default_forces_file_is_the_county_force() -> None:
    forces = load_forces(DEFAULT_FORCES_FILE)
    assert list(forces) == ["lancashire"]
    assert forces["lancashire"].divisions == ["east", "south", "west"]
    rates = forces["lancashire"].rates
    # one county force: ~1,500 referrals a year; in six months 75 warrants,
    # 84 people arrested, 64 children safeguarded
    assert (rates.referrals_received, rates.warrants_executed) == (1500, 150)
    assert (rates.arrests, rates.children_safeguarded) == (168, 128)


RATES = (
    "\n[forces.x1.rates]\nreferrals_received = 1.0\nwarrants_executed = 1.0\n"
    "arrests = 1.0\nchildren_safeguarded = 1.0\n"
)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[forces.lancashire]\nname = "L"\ndivisions = []\n', "forces.lancashire.divisions"),
        ('[forces.Lancs]\nname = "L"\ndivisions = ["east"]\n', "forces"),
        ('[forces.x1]\nname = "L"\ndivisions = ["East"]\n' + RATES, "forces.x1.divisions"),
        ('[forces.x1]\nname = "L"\ndivisions = ["east"]\n', "forces.x1.rates"),
        ("[forces.x1\n", "(syntax)"),
        ('[forces.x1]\nname = "L"\ndivisions = ["east"]\ncolour = 1\n' + RATES, "forces.x1.colour"),
    ],
)
def test_bad_forces_file_names_file_key_and_fix(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "forces.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_forces(path)
    assert err.value.file == str(path)
    assert err.value.key.startswith(key)
    assert "Fix:" in str(err.value)


def test_missing_forces_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OPS_FORCES_FILE"):
        load_forces(tmp_path / "nope.toml")


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_TIMEZONE", "Europe/Londn")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert err.value.key == "OPS_TIMEZONE"


def test_sasl_without_credentials_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    with pytest.raises(ConfigError, match="OPS_KAFKA_SASL_USERNAME"):
        load_settings()


def test_password_is_never_rendered() -> None:
    s = Settings(
        kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u", kafka_sasl_password="hunter2"
    )
    assert "hunter2" not in repr(s)


def test_cli_stops_with_the_message(tmp_path: Path) -> None:
    bad = tmp_path / "forces.toml"
    bad.write_text('[forces.x1]\nname = "L"\ndivisions = ["east", "east"]\n' + RATES)
    result = subprocess.run(
        [sys.executable, "-m", "opsmetrics.cli", "status"],
        env={"OPS_FORCES_FILE": str(bad), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "forces.x1.divisions" in result.stderr
    assert "Fix:" in result.stderr


def test_sasl_mechanism_needs_a_sasl_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("OPS_KAFKA_SASL_USERNAME", "ops")
    monkeypatch.setenv("OPS_KAFKA_SASL_PASSWORD", "not-checked-in")
    with pytest.raises(ConfigError, match="SASL_PLAINTEXT or SASL_SSL") as err:
        load_settings()
    assert err.value.key == "OPS_KAFKA_SASL_MECHANISM"
    monkeypatch.delenv("OPS_KAFKA_SASL_MECHANISM")
    monkeypatch.setenv("OPS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match="mechanism is unset"):
        load_settings()


def test_faust_credentials_follow_the_security_protocol() -> None:
    import faust

    from streams.app import credentials

    sasl = {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "ops"}
    plain = credentials(Settings(**sasl, kafka_security_protocol="SASL_PLAINTEXT"))
    assert isinstance(plain, faust.SASLCredentials)
    assert (plain.protocol.value, plain.mechanism.value) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")
    tls = credentials(Settings(**sasl, kafka_security_protocol="SASL_SSL"))
    assert tls.protocol.value == "SASL_SSL"
    assert tls.ssl_context is not None
    assert isinstance(credentials(Settings(kafka_security_protocol="SSL")), faust.SSLCredentials)
    assert credentials(Settings()) is None
