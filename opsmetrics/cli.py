"""The ``opsmetrics`` command line: one entry point for every part of the product."""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from opsmetrics import logs
from opsmetrics.settings import ConfigError, Settings, load_settings
from services.contract.classify import Accepted, Classifier, Rejected, parse_object
from services.contract.events import TOPIC_OF, EventType, RejectReason

app = typer.Typer(
    help="Live operational metrics for child-protection work (events -> Kafka -> Prometheus).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def settings() -> Settings:
    """Load settings, or stop with a message naming the file, the key and the fix."""
    try:
        s = load_settings()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(s.log_level, s.log_format, s.log_level_libraries)
    return s


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


# --------------------------------------------------------------------------- contract
contract_app = typer.Typer(help="The event contract (JSON Schema files).", no_args_is_help=True)
app.add_typer(contract_app, name="contract")


@contract_app.command("schema")
def contract_schema(
    check: Annotated[bool, typer.Option(help="Only check the files are current.")] = False,
) -> None:
    """Write (or check) the JSON Schema files generated from the models."""
    from services.contract import jsonschema

    if check:
        stale = jsonschema.stale()
        if stale:
            raise _fail(f"stale schema files: {', '.join(stale)}; run `opsmetrics contract schema`")
        typer.echo("schema files are current")
        return
    for path in jsonschema.write():
        typer.echo(f"wrote {path}")


# --------------------------------------------------------------------------- topics
@app.command()
def topics() -> None:
    """Create the contract topics that are missing, and list them all."""
    from services.topics import KafkaUnavailable, ensure_topics

    s = settings()
    try:
        states = ensure_topics(s)
    except KafkaUnavailable as exc:
        raise _fail(str(exc)) from None
    for state in states:
        flag = "created" if state.created else "exists"
        warn = ""
        if state.partitions < s.topic_partitions:
            warn = f"  (fewer than the configured {s.topic_partitions})"
        typer.echo(f"{state.name:24} {state.partitions:3} partitions  {flag}{warn}")


# --------------------------------------------------------------------------- emit / import
def _classifier(s: Settings) -> Classifier:
    return Classifier.for_prefix(
        s.topic_prefix, {force: f.divisions for force, f in s.forces.items()}
    )


def _topic_for(s: Settings, obj: dict[str, Any]) -> str:
    try:
        return s.topic(TOPIC_OF[EventType(str(obj.get("type")))])
    except ValueError:
        return s.topic("unknown")


@app.command()
def emit(
    json_text: Annotated[
        str | None, typer.Option("--json", help="The whole event as a JSON object.")
    ] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Event type.")] = None,
    force: Annotated[str | None, typer.Option()] = None,
    division: Annotated[str | None, typer.Option()] = None,
    occurred_at: Annotated[str | None, typer.Option(help="RFC 3339; default now.")] = None,
    event_id: Annotated[str | None, typer.Option(help="Default: a new UUID.")] = None,
    source: Annotated[str, typer.Option()] = "cli",
    operation: Annotated[str | None, typer.Option()] = None,
    origin: Annotated[str | None, typer.Option(help="proactive | referral")] = None,
    persons: Annotated[int | None, typer.Option()] = None,
    previously_known: Annotated[bool | None, typer.Option("--previously-known/--not-known")] = (
        None
    ),
    children: Annotated[int | None, typer.Option()] = None,
    referrer: Annotated[str | None, typer.Option()] = None,
    risk: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Publish one event, from flags or from --json; print where Kafka stored it."""
    from services.publisher import Publisher, PublishError
    from services.topics import KafkaUnavailable

    s = settings()
    if json_text is not None:
        try:
            obj = parse_object(json_text.encode())
        except ValueError as exc:
            raise _fail(f"--json: {exc}", 2) from None
    else:
        obj = {
            "version": 1,
            "event_id": event_id or str(uuid.uuid4()),
            "type": type_,
            "occurred_at": occurred_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "force": force,
            "division": division,
            "source": source,
            "operation": operation,
            "origin": origin,
            "persons": persons,
            "previously_known": previously_known,
            "children": children,
            "referrer": referrer,
            "risk": risk,
        }
        obj = {k: v for k, v in obj.items() if v is not None}
    outcome = _classifier(s).classify_object(_topic_for(s, obj), obj)
    if isinstance(outcome, Rejected):
        where = f" ({outcome.field})" if outcome.field else ""
        raise _fail(f"not sent: {outcome.reason}{where}: {outcome.detail}", 2)
    try:
        with Publisher(s) as pub:
            d = pub.publish(outcome.event)
    except (KafkaUnavailable, PublishError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"sent {d.event_id} to {d.topic} partition {d.partition} offset {d.offset}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A JSON Lines file.")],
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
) -> None:
    """Publish a JSON Lines file of events; invalid lines are reported, never sent."""
    from tqdm import tqdm

    from services.publisher import Publisher, PublishError
    from services.topics import KafkaUnavailable

    s = settings()
    classifier = _classifier(s)
    rejected: dict[str, int] = {}
    examples: list[str] = []
    sent = 0
    pending: list[Any] = []
    lines = path.read_bytes().splitlines()
    try:
        with Publisher(s) as pub, tqdm(total=len(lines), unit="ev", file=sys.stderr) as bar:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    bar.update(1)
                    continue
                try:
                    obj = parse_object(line)
                    outcome: Accepted | Rejected = classifier.classify_object(
                        _topic_for(s, obj), obj
                    )
                except ValueError as exc:
                    outcome = Rejected(RejectReason.MALFORMED, None, str(exc))
                if isinstance(outcome, Rejected):
                    rejected[outcome.reason] = rejected.get(outcome.reason, 0) + 1
                    if len(examples) < 20:
                        where = f" ({outcome.field})" if outcome.field else ""
                        examples.append(f"line {number}: {outcome.reason}{where}: {outcome.detail}")
                else:
                    pending.append(outcome.event)
                if len(pending) >= batch:
                    sent += len(pub.publish_many(pending))
                    pending.clear()
                bar.update(1)
            if pending:
                sent += len(pub.publish_many(pending))
    except (KafkaUnavailable, PublishError) as exc:
        raise _fail(f"{exc} ({sent} events were confirmed before this)") from None
    for example in examples:
        typer.echo(example, err=True)
    summary = ", ".join(f"{n} {reason}" for reason, n in sorted(rejected.items())) or "none"
    typer.echo(f"sent {sent}; rejected locally {sum(rejected.values())} ({summary})")
    if rejected:
        raise typer.Exit(3)


# --------------------------------------------------------------------------- simulate
def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(help="Same seed, same events.")] = 0,
    backfill: Annotated[
        tuple[str, str] | None,
        typer.Option(
            metavar="FROM TO", help="Publish history FROM..TO (dates) as fast as possible."
        ),
    ] = None,
    factor: Annotated[
        float, typer.Option(min=1.0, help="Live mode: simulated seconds per real second.")
    ] = 60.0,
    duration: Annotated[
        float | None, typer.Option(help="Live mode: stop after this many real seconds.")
    ] = None,
    spike: Annotated[int, typer.Option(min=0, help="Extra referrals to inject (a surge).")] = 0,
    spike_force: Annotated[str | None, typer.Option(help="Default: the first force.")] = None,
    spike_division: Annotated[str | None, typer.Option(help="Default: its first division.")] = None,
    spike_minutes: Annotated[float, typer.Option(min=1.0)] = 60.0,
) -> None:
    """Publish realistic events: live (time-compressed) or --backfill of history."""
    from services import simulation_runner as runner
    from services.publisher import Publisher, PublishError
    from services.simulator import Simulator
    from services.topics import KafkaUnavailable

    s = settings()
    sim = Simulator(s.forces, seed=seed, tz_name=s.timezone)
    force = spike_force or sorted(s.forces)[0]
    if force not in s.forces:
        raise _fail(f"--spike-force {force!r} is not configured in {s.forces_file}", 2)
    division = spike_division or s.forces[force].divisions[0]
    if division not in s.forces[force].divisions:
        raise _fail(f"--spike-division {division!r} is not a division of {force}", 2)
    try:
        with Publisher(s, client_id="opsmetrics-simulator") as pub:
            if backfill:
                start, end = _date(backfill[0]), _date(backfill[1])
                if end <= start:
                    raise _fail("--backfill: TO must be after FROM", 2)
                counts = runner.backfill(pub, sim, start, end)
                if spike:
                    spike_at = end - timedelta(minutes=spike_minutes)
                    counts["spike"] = len(
                        pub.publish_many(
                            sim.spike(
                                force, division, spike, spike_at, timedelta(minutes=spike_minutes)
                            )
                        )
                    )
                typer.echo("published " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
            else:
                runner.live(
                    pub,
                    sim,
                    factor=factor,
                    duration_s=duration,
                    spike=(force, division, spike, timedelta(minutes=spike_minutes))
                    if spike
                    else None,
                )
    except (KafkaUnavailable, PublishError) as exc:
        raise _fail(str(exc)) from None


# --------------------------------------------------------------------------- stream
@app.command()
def worker() -> None:
    """Run a stream worker (serves /metrics and /health on OPS_WORKER_HOST:PORT)."""
    from services.topics import KafkaUnavailable
    from streams.worker import run

    s = settings()
    try:
        run(s)
    except (KafkaUnavailable, ValueError) as exc:
        raise _fail(str(exc)) from None


# --------------------------------------------------------------------------- local stack
@app.command()
def up(
    simulate: Annotated[bool, typer.Option(help="Also run the simulator.")] = True,
) -> None:
    """Start the local stack (no Docker): whatever is not running yet."""
    from stack import local

    s = settings()
    started = time.monotonic()
    try:
        parts = local.up(s, simulate=simulate)
    except (RuntimeError, TimeoutError) as exc:
        raise _fail(
            f"{exc}\n(parts already started keep running: `make down` stops them)"
        ) from None
    for part in parts:
        typer.echo(f"  {part.name:10} {part.where}")
    typer.echo(
        f"up in {time.monotonic() - started:.1f} s; logs in {local.log_dir(s)}; "
        "stop with `make down`"
    )


@app.command()
def down() -> None:
    """Stop everything `up` started."""
    from stack import local

    stopped = local.down(settings())
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status() -> None:
    """Show which parts of the local stack are running."""
    from stack import local

    parts = local.status(settings())
    for part in parts:
        typer.echo(f"  {part.name:10} {'running' if part.running else 'stopped':8} {part.where}")


def _mount() -> None:
    """Mount the sub-commands that live beside the code they drive."""
    from services.deadletter_cli import deadletter_app
    from services.ingest.cli import ingest, ingest_token
    from services.report import report
    from stack.kafka_cli import kafka_app

    app.add_typer(kafka_app, name="kafka", help="The local Kafka broker.")
    app.add_typer(deadletter_app, name="deadletter")
    app.command("report")(report)
    app.command("ingest")(ingest)
    app.command("ingest-token")(ingest_token)


_mount()

if __name__ == "__main__":
    app()
