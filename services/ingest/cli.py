"""Commands of the ingest API: ``opsmetrics ingest`` and ``opsmetrics ingest-token``.

Mounted on the main CLI in ``opsmetrics/cli.py``; also runnable on their own with
``python -m services.ingest.cli ingest``.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Annotated

import typer

from opsmetrics import logs
from opsmetrics.settings import ConfigError, Settings, load_settings
from services.ingest.auth import SOURCE_NAME, hash_token, new_token
from services.ingest.config import DEFAULT_SOURCES_FILE, IngestSettings


def _load() -> tuple[Settings, IngestSettings]:
    try:
        settings = load_settings()
        ingest_settings = IngestSettings()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:  # pydantic's ValidationError for OPS_INGEST_*
        typer.echo(f"configuration error: OPS_INGEST_*: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(settings.log_level, settings.log_format, settings.log_level_libraries)
    return settings, ingest_settings


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def ingest() -> None:
    """Serve the ingest API (POST /v1/events) on OPS_INGEST_HOST:OPS_INGEST_PORT."""
    import structlog
    import uvicorn

    from services.ingest.app import create_app

    settings, ingest_settings = _load()
    # kafka-python logs every failed connection attempt; our kafka_up/kafka_down lines
    # report the state once per change instead.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    log = structlog.get_logger("services.ingest")
    tls = bool(ingest_settings.tls_certfile and ingest_settings.tls_keyfile)
    if not tls and not _loopback(settings.ingest_host):
        log.warning(
            "ingest_plain_http",
            host=settings.ingest_host,
            hint="tokens travel in clear: set OPS_INGEST_TLS_CERTFILE/KEYFILE or use a TLS proxy",
        )
    try:
        app = create_app(settings, ingest_settings)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        app,
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_config=None,  # keep our structured logging
        access_log=False,  # access lines may carry query strings; we log our own
        server_header=False,
        ssl_certfile=str(ingest_settings.tls_certfile) if tls else None,
        ssl_keyfile=str(ingest_settings.tls_keyfile) if tls else None,
    )


def ingest_token(
    source: Annotated[str, typer.Option(help="The sending system's name (a slug).")],
) -> None:
    """Make a new token for a source: give the token to the system, paste the hash line."""
    if not SOURCE_NAME.match(source):
        typer.echo("error: --source must be a slug of 2-64 characters [a-z0-9-]", err=True)
        raise typer.Exit(2)
    token = new_token()
    typer.echo(f"token for {source} (shown once, never stored; give it to the sending system):")
    typer.echo(f"  {token}")
    try:
        sources_file = IngestSettings().sources_file
    except ValueError:
        sources_file = DEFAULT_SOURCES_FILE
    typer.echo(f"\nadd to [sources.{source}] in {sources_file}, then restart the ingest API:")
    typer.echo(f'  token_hashes = ["{hash_token(token)}"]')


ingest_cli = typer.Typer(help="The ingest API.", no_args_is_help=True, add_completion=False)
ingest_cli.command("ingest")(ingest)
ingest_cli.command("ingest-token")(ingest_token)

if __name__ == "__main__":
    ingest_cli()
