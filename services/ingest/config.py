"""Settings of the ingest API: environment variables ``OPS_INGEST_<NAME>``.

The listening address is in the shared settings (``OPS_INGEST_HOST``,
``OPS_INGEST_PORT``); the retention of remembered event ids is ``OPS_DEDUP_DAYS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from opsmetrics.settings import PROJECT_ROOT

DEFAULT_SOURCES_FILE: Final = PROJECT_ROOT / "config" / "ingest_sources.toml"
EXAMPLE_SOURCES_FILE: Final = PROJECT_ROOT / "config" / "ingest_sources.example.toml"
MAX_EVENTS_LIMIT: Final = 500


class IngestSettings(BaseSettings):
    """Limits, sources and timing of the ingest API."""

    model_config = SettingsConfigDict(
        env_prefix="OPS_INGEST_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    sources_file: Path = DEFAULT_SOURCES_FILE
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_events: int = Field(default=MAX_EVENTS_LIMIT, ge=1, le=MAX_EVENTS_LIMIT)
    rate_per_s: float = Field(default=100.0, gt=0, le=1_000_000)
    burst: int = Field(default=1000, ge=MAX_EVENTS_LIMIT, le=10_000_000)
    retry_after_s: int = Field(default=5, ge=1, le=3600)
    publish_timeout_s: float = Field(default=5.0, gt=0, le=120)
    health_interval_s: float = Field(default=5.0, gt=0, le=300)
    dedup_file: Path | None = None
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
