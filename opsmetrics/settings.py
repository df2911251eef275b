"""All configuration in one place.

Runtime settings come from environment variables with the prefix ``OPS_`` (or a
``.env`` file); the forces and divisions come from a TOML file named by
``OPS_FORCES_FILE`` (default: ``config/forces.toml``). A bad value stops start-up
with a :class:`ConfigError` that names the file, the key and the fix.
"""

from __future__ import annotations

import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FORCES_FILE = PROJECT_ROOT / "config" / "forces.toml"
SLUG = re.compile(r"^[a-z0-9-]{2,40}$")


class ConfigError(Exception):
    """A configuration problem, phrased for the person who has to fix it."""

    def __init__(self, file: str, key: str, problem: str, fix: str) -> None:
        self.file, self.key, self.problem, self.fix = file, key, problem, fix
        super().__init__(f"{file}: {key}: {problem}. Fix: {fix}")


class YearlyRates(BaseModel):
    """Expected events per year for one force, used by the simulator.

    ``arrests`` counts people arrested, ``children_safeguarded`` counts children:
    the same units as the counters they feed.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    referrals_received: float = Field(ge=0)
    warrants_executed: float = Field(ge=0)
    arrests: float = Field(ge=0)
    children_safeguarded: float = Field(ge=0)
    share_from_referrals: float = Field(default=0.6, ge=0, le=1)
    share_previously_known: float = Field(default=0.3, ge=0, le=1)


class Force(BaseModel):
    """One police force: its divisions (label values) and simulator rates."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    divisions: list[str] = Field(min_length=1)
    rates: YearlyRates

    @field_validator("divisions")
    @classmethod
    def _slugs(cls, value: list[str]) -> list[str]:
        for division in value:
            if not SLUG.match(division):
                raise ValueError(f"division {division!r} is not a slug [a-z0-9-]{{2,40}}")
        if len(set(value)) != len(value):
            raise ValueError("divisions must be unique")
        return value


class ForcesFile(BaseModel):
    """The parsed forces file: force slug -> :class:`Force`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    forces: dict[str, Force] = Field(min_length=1)

    @field_validator("forces")
    @classmethod
    def _force_slugs(cls, value: dict[str, Force]) -> dict[str, Force]:
        for slug in value:
            if not SLUG.match(slug):
                raise ValueError(f"force {slug!r} is not a slug [a-z0-9-]{{2,40}}")
        return value


def load_forces(path: Path) -> dict[str, Force]:
    """Read and check the forces file; raise :class:`ConfigError` on any problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            str(path),
            "OPS_FORCES_FILE",
            "file not found",
            f"create it (copy {DEFAULT_FORCES_FILE}) or point OPS_FORCES_FILE at one",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            str(path), "(syntax)", f"not valid TOML ({exc})", "correct the TOML syntax at that line"
        ) from None
    try:
        return ForcesFile.model_validate(raw).forces
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        example = f"(see {DEFAULT_FORCES_FILE} for an example)"
        fix = {
            "missing": f"add {key} {example}",
            "extra_forbidden": f"remove {key}: it is not a known setting {example}",
        }.get(err["type"], f"set {key} to a valid value {example}")
        raise ConfigError(str(path), key, err["msg"], fix) from None


class Settings(BaseSettings):
    """Runtime settings; every field is the environment variable ``OPS_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="OPS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Kafka connection (security from configuration only, never checked-in defaults)
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_request_timeout_s: float = Field(default=15.0, gt=0, le=120)

    # Topics
    topic_prefix: str = "ops."
    topic_partitions: int = Field(default=6, ge=1, le=1000)
    topic_replication: int = Field(default=1, ge=1, le=5)
    # Kafka compacts only closed segments of a changelog; rolling one every hour (not
    # every 7 days) lets a restore read each key's last value, not every write.
    changelog_segment_ms: int = Field(default=3_600_000, ge=10_000, le=604_800_000)

    # Domain
    forces_file: Path = DEFAULT_FORCES_FILE
    timezone: str = "Europe/London"
    dedup_days: int = Field(default=30, ge=30, le=3650)
    future_tolerance_s: int = Field(default=300, ge=0, le=3600)

    # Listening addresses (loopback by default)
    worker_host: str = "127.0.0.1"
    worker_port: int = Field(default=6066, ge=1, le=65535)
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8080, ge=1, le=65535)

    # Local state
    data_dir: Path = PROJECT_ROOT / ".run"
    cache_dir: Path = PROJECT_ROOT / ".cache"

    # Logs
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    #: Level of the Kafka and Faust libraries' own logs (their INFO is chatty; raise it
    #: to INFO to follow rebalances and table recovery).
    log_level_libraries: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from None
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{0,100}", value):
            raise ValueError("topic prefix may hold only letters, digits, '.', '_' and '-'")
        return value

    @cached_property
    def forces(self) -> dict[str, Force]:
        """The configured forces (read once)."""
        return load_forces(self.forces_file)

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone for calendar windows and reports."""
        return ZoneInfo(self.timezone)

    def topic(self, short: str) -> str:
        """Full topic name for a short name such as ``warrants``."""
        return f"{self.topic_prefix}{short}"

    def kafka_client_options(self) -> dict[str, object]:
        """Connection options of kafka-python clients (aiokafka: drop ``ssl_cafile``)."""
        opts: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_ssl_cafile and self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            opts["ssl_cafile"] = str(self.kafka_ssl_cafile)
        if self.kafka_sasl_mechanism:
            opts["sasl_mechanism"] = self.kafka_sasl_mechanism
            opts["sasl_plain_username"] = self.kafka_sasl_username
            opts["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        return opts


def load_settings() -> Settings:
    """Build :class:`Settings` from the environment, turning errors into ConfigError."""
    try:
        settings = Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        raise ConfigError(
            "environment / .env",
            f"OPS_{field.upper()}",
            err["msg"],
            f"set OPS_{field.upper()} to a valid value or unset it to use the default",
        ) from None
    if settings.kafka_sasl_mechanism and not (
        settings.kafka_sasl_username and settings.kafka_sasl_password
    ):
        raise ConfigError(
            "environment / .env",
            "OPS_KAFKA_SASL_USERNAME",
            "a SASL mechanism is set without a username and password",
            "set OPS_KAFKA_SASL_USERNAME and OPS_KAFKA_SASL_PASSWORD",
        )
    sasl_protocol = settings.kafka_security_protocol.startswith("SASL_")
    if sasl_protocol != bool(settings.kafka_sasl_mechanism):
        raise ConfigError(
            "environment / .env",
            "OPS_KAFKA_SASL_MECHANISM",
            f"OPS_KAFKA_SECURITY_PROTOCOL is {settings.kafka_security_protocol} but the SASL "
            f"mechanism is {settings.kafka_sasl_mechanism or 'unset'}",
            "use SASL_PLAINTEXT or SASL_SSL together with a SASL mechanism, "
            "PLAINTEXT or SSL without one",
        )
    _ = settings.forces  # fail fast on a bad forces file
    return settings
