"""Start a stream worker: ``opsmetrics worker``."""

from __future__ import annotations

import logging

import faust

from opsmetrics import logs
from opsmetrics.settings import Settings
from services.topics import source_partitions
from streams import consumer_state, heap
from streams.app import create_app
from streams.changelogs import ensure_changelogs


def run(settings: Settings) -> None:
    """Create missing topics and changelogs, build the app, run it until SIGTERM or Ctrl-C."""
    heap.one_malloc_arena()  # before Faust starts its consumer thread
    heap.tune_collector()
    partitions = source_partitions(settings)
    ensure_changelogs(settings, partitions)  # before Faust joins the group (streams/changelogs.py)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app, _ = create_app(settings, partitions)

    class Worker(faust.Worker):
        """Faust's worker, logging through our structured handler (OPS_LOG_FORMAT)."""

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            # Faust installs its own plain-text handler on start; put ours back, or
            # every line after start-up would be "[time] [pid] [LEVEL] {dict}". No
            # progress spinner either: its control characters would break JSON lines.
            self.spinner = None
            logs.configure(settings.log_level, settings.log_format, settings.log_level_libraries)

        def _on_sigusr2(self) -> None:
            # mode's default enters pdb on the worker's loop; log the consumer's state.
            consumer_state.log_snapshot(app)

    worker = Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
