"""Start a stream worker: ``opsmetrics worker``."""

from __future__ import annotations

import faust

from opsmetrics.settings import Settings
from services.topics import source_partitions
from streams.app import create_app


def run(settings: Settings) -> None:
    """Create missing topics, build the app and run it until SIGTERM or Ctrl-C."""
    partitions = source_partitions(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app, _ = create_app(settings, partitions)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
