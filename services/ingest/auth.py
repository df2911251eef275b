"""Who may send what: one bearer token (or several, for rotation) per sending system.

The sources file (``OPS_INGEST_SOURCES_FILE``, TOML) names each source with the
SHA-256 of its tokens, the event types and forces it may send and, optionally, its
own rate limit. Tokens are 256-bit random strings made by ``opsmetrics
ingest-token``, so a plain SHA-256 is enough: a slow password hash only helps
secrets a person could guess. Tokens are never stored or logged in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opsmetrics.settings import ConfigError
from services.contract.events import EventType
from services.ingest.config import EXAMPLE_SOURCES_FILE, MAX_EVENTS_LIMIT

log = structlog.get_logger(__name__)

TOKEN_PREFIX: Final = "opsi_"  # noqa: S105 - a prefix, not a secret
HASH_PREFIX: Final = "sha256:"
ALL: Final = "*"
SOURCE_NAME = re.compile(r"^[a-z0-9-]{2,64}$")
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_KNOWN_TYPES: Final = frozenset(t.value for t in EventType)


def new_token() -> str:
    """A fresh random token (256 bits), recognisable by its ``opsi_`` prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: ``sha256:<hex>``."""
    return HASH_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


class _SourceEntry(BaseModel):
    """One ``[sources.<name>]`` table of the sources file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    description: str = ""
    token_hashes: list[Annotated[str, Field(pattern=_HASH.pattern)]] = Field(min_length=1)
    types: list[str] = Field(min_length=1)
    forces: list[str] = Field(min_length=1)
    rate_per_s: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=MAX_EVENTS_LIMIT)

    @field_validator("types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        for name in value:
            if name != ALL and name not in _KNOWN_TYPES:
                raise ValueError(f"unknown event type {name!r}; use {sorted(_KNOWN_TYPES)} or '*'")
        return value


class _SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sources: dict[str, _SourceEntry] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Source:
    """A sending system and what it may send (``None`` means any type / any force)."""

    name: str
    types: frozenset[str] | None
    forces: frozenset[str] | None
    rate_per_s: float | None = None
    burst: int | None = None

    def refusal(self, obj: Mapping[str, Any]) -> str | None:
        """The field (``type`` or ``force``) this source may not send, if any.

        Values that are not even well-formed are left to the classifier (``schema``).
        """
        etype, force = obj.get("type"), obj.get("force")
        if (
            self.types is not None
            and isinstance(etype, str)
            and etype in _KNOWN_TYPES
            and etype not in self.types
        ):
            return "type"
        if self.forces is not None and isinstance(force, str) and force not in self.forces:
            return "force"
        return None


class Authenticator:
    """Finds the source of a presented bearer token by comparing hashes."""

    def __init__(self, sources: Mapping[str, tuple[Source, list[str]]]) -> None:
        self._entries: list[tuple[bytes, Source]] = [
            (bytes.fromhex(h.removeprefix(HASH_PREFIX)), source)
            for source, hashes in sources.values()
            for h in hashes
        ]
        self.sources: dict[str, Source] = {name: s for name, (s, _) in sources.items()}

    def authenticate(self, token: str | None) -> Source | None:
        """The source owning ``token``, or None (unknown, empty or missing token)."""
        if not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8", errors="replace")).digest()
        found: Source | None = None
        for stored, source in self._entries:
            if hmac.compare_digest(stored, digest):
                found = source
        return found


def parse_sources(
    raw: Mapping[str, Any], forces: Mapping[str, object], file: str
) -> dict[str, tuple[Source, list[str]]]:
    """Check a parsed sources file against the configured forces; raise ConfigError."""
    example = f"(see {EXAMPLE_SOURCES_FILE.name} for an example)"
    try:
        parsed = _SourcesFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_input=False)[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(file, key, err["msg"], f"correct {key} {example}") from None
    out: dict[str, tuple[Source, list[str]]] = {}
    seen_hashes: dict[str, str] = {}
    for name, entry in parsed.sources.items():
        if not SOURCE_NAME.match(name):
            raise ConfigError(
                file, f"sources.{name}", "not a slug [a-z0-9-]{2,64}", "rename the source"
            )
        for force in entry.forces:
            if force != ALL and force not in forces:
                raise ConfigError(
                    file,
                    f"sources.{name}.forces",
                    f"force {force!r} is not in the forces file",
                    "use a configured force slug or '*'",
                )
        for h in entry.token_hashes:
            if h in seen_hashes:
                raise ConfigError(
                    file,
                    f"sources.{name}.token_hashes",
                    f"the same token hash is also given to {seen_hashes[h]!r}",
                    "give every source its own token (`opsmetrics ingest-token`)",
                )
            seen_hashes[h] = name
        source = Source(
            name=name,
            types=None if ALL in entry.types else frozenset(entry.types),
            forces=None if ALL in entry.forces else frozenset(entry.forces),
            rate_per_s=entry.rate_per_s,
            burst=entry.burst,
        )
        out[name] = (source, list(entry.token_hashes))
    return out


def load_sources(path: Path, forces: Mapping[str, object]) -> Authenticator:
    """Read the sources file; a missing file means no source may send (every call 401)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        log.warning(
            "ingest_no_sources_file",
            file=str(path),
            hint=f"copy {EXAMPLE_SOURCES_FILE.name} and add tokens with `opsmetrics ingest-token`",
        )
        return Authenticator({})
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            str(path), "(syntax)", f"not valid TOML ({exc})", "correct the TOML syntax"
        ) from None
    return Authenticator(parse_sources(raw, forces, str(path)))
