"""``opsmetrics deadletter list|replay``: what was rejected, and sending it back once fixed.

Mounted on the main CLI in ``opsmetrics/cli.py``; the work is in services/deadletter.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from opsmetrics.settings import Settings
from services.contract.events import RejectReason
from services.deadletter import ReplayError, Summary, replay, summarise
from services.kafka_access import KafkaUnavailable

deadletter_app = typer.Typer(
    help="Dead letters: count them by reason, replay them once the cause is fixed.",
    no_args_is_help=True,
)


def _settings() -> Settings:
    # The main CLI's loader (imported here: opsmetrics.cli mounts this module).
    from opsmetrics.cli import settings

    return settings()


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date or time (ISO 8601)", param_hint=option
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _table(summary: Summary, replaying: bool, dry_run: bool = False) -> None:
    now = "would replay" if dry_run else "replayed now"
    head: tuple[str, ...] = ("reason", "source topic", "dead letters")
    if replaying:
        head += (now, "replayed before", "still rejected")
    else:
        head += ("replayed",)
    rows = [
        (r, t, str(n), str(now_), str(a), str(s)) if replaying else (r, t, str(n), str(a))
        for r, t, n, now_, a, s in summary.rows()
    ]
    if not rows:
        typer.echo("(no dead letters match)")
        return
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    for row in (head, *rows):
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@deadletter_app.command("list")
def list_() -> None:
    """Count the dead letters by reason and source topic, and how many were replayed."""
    settings = _settings()
    try:
        summary = summarise(settings)
    except (KafkaUnavailable, ReplayError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _table(summary, replaying=False)


@deadletter_app.command("replay")
def replay_(
    reason: Annotated[
        RejectReason, typer.Option(help="Replay the dead letters of this reason only.")
    ],
    source_topic: Annotated[
        str | None, typer.Option(help="Only those from this topic (full name).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only those dead-lettered at or after this time (ISO).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only those dead-lettered before this time (ISO).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Count what would be replayed; send nothing.")] = (
        False
    ),
) -> None:
    """Send dead letters back to their source topics, unchanged, each at most once.

    Only those the current configuration accepts are sent (fix the cause first, e.g.
    add the division to the forces file and restart the workers); the rest stay.
    """
    settings = _settings()
    try:
        summary = replay(
            settings,
            reason,
            source_topic=source_topic,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
            dry_run=dry_run,
        )
    except ValueError as exc:
        typer.echo(f"error: --source-topic: {exc}", err=True)
        raise typer.Exit(2) from None
    except (KafkaUnavailable, ReplayError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _table(summary, replaying=True, dry_run=dry_run)
    verb = "would replay" if dry_run else "replayed"
    typer.echo(
        f"{verb} {sum(summary.replayed.values())}; replayed before "
        f"{sum(summary.already.values())}; still rejected {sum(summary.still_rejected.values())}"
    )
