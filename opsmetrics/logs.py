"""Structured logging (structlog): JSON lines by default, readable in a terminal.

Log events carry ids, types, topic positions and reasons only: never an event's
content, a token or a password.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "INFO", fmt: str = "json", libraries: str = "WARNING") -> None:
    """Route structlog and the standard library's logging to stderr in one format.

    ``libraries`` is the level of kafka, aiokafka, faust and mode (never below ``level``).
    """
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Libraries log exceptions with exc_info: keep their tracebacks as text.
                *([structlog.processors.format_exc_info] if fmt == "json" else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka", "aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(
            max(logging.getLevelName(libraries), logging.getLevelName(level))
        )
    # Warns on every SCRAM login without TLS, though SCRAM never sends the password.
    logging.getLogger("kafka.net.sasl.scram").setLevel(logging.ERROR)
