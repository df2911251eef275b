"""``opsmetrics kafka start|stop|status``: the local single-node broker (see stack/kafka.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from opsmetrics.settings import Settings
from stack.kafka import KafkaBroker, KafkaStackError

kafka_app = typer.Typer(help="The local single-node Kafka broker (KRaft) for development.")

DataDirOption = Annotated[
    Path | None, typer.Option(help="Broker data dir (default: <OPS_DATA_DIR>/kafka).")
]


def broker_from_settings(settings: Settings, data_dir: Path | None = None) -> KafkaBroker:
    """The broker at ``settings.kafka_bootstrap`` (first address) in ``data_dir``."""
    host, _, port = settings.kafka_bootstrap.split(",")[0].strip().rpartition(":")
    if not port.isdigit():
        raise typer.BadParameter(f"OPS_KAFKA_BOOTSTRAP {settings.kafka_bootstrap!r} has no port")
    return KafkaBroker(
        data_dir=data_dir or settings.data_dir / "kafka",
        host=host or "127.0.0.1",
        port=int(port),
        cache_dir=settings.cache_dir,
    )


@kafka_app.command()
def start(
    data_dir: DataDirOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 120.0,
) -> None:
    """Start the broker in the background and wait until it answers an admin call."""
    broker = broker_from_settings(Settings(), data_dir)
    started = time.monotonic()
    try:
        if broker.is_running():
            typer.echo(f"kafka already running (pid {broker.pid()}) at {broker.bootstrap}")
            return
        broker.start()
        broker.wait_ready(timeout)
    except KafkaStackError as exc:
        typer.echo(f"kafka failed to start: {exc}", err=True)
        broker.stop()
        raise typer.Exit(1) from None
    typer.echo(
        f"kafka ready at {broker.bootstrap} (controller {broker.host}:{broker.controller_port}, "
        f"pid {broker.pid()}) in {time.monotonic() - started:.1f}s; "
        f"data {broker.data_dir}, logs {broker.logs_dir}"
    )


@kafka_app.command()
def stop(data_dir: DataDirOption = None) -> None:
    """Stop the broker (SIGTERM, then SIGKILL after 30 s)."""
    broker = broker_from_settings(Settings(), data_dir)
    if not broker.is_running():
        typer.echo("kafka not running")
        return
    broker.stop()
    typer.echo("kafka stopped")


@kafka_app.command()
def status(data_dir: DataDirOption = None) -> None:
    """Say whether the broker runs; exit code 0 if it does, 3 if not."""
    broker = broker_from_settings(Settings(), data_dir)
    pid = broker.pid()
    if pid is None:
        typer.echo(f"kafka not running (data {broker.data_dir})")
        raise typer.Exit(3)
    state = "answering" if broker.answers(5.0) else "NOT answering admin calls yet"
    typer.echo(f"kafka running (pid {pid}) at {broker.bootstrap}, {state}; data {broker.data_dir}")
