"""HTTP API of the stream workers beyond /metrics and /health: period figures.

``GET /api/v1/counts?from=YYYY-MM-DD&to=YYYY-MM-DD[&force=][&division=][&group_by=]``
answers exact totals for inclusive local dates from the day buckets of every
partition (streams/periods.py), whichever worker is asked. The contract is
docs/openapi-counts.yaml.
"""

from __future__ import annotations

import time
from typing import Final
from urllib.parse import parse_qsl

import faust
import structlog
from faust.web import Request, Response, View
from mode import Service

from opsmetrics.settings import Settings
from streams.periods import (
    ChangelogReader,
    NotCaughtUp,
    ParamError,
    answer,
    parse_query,
)

log = structlog.get_logger(__name__)

CATCH_UP_TIMEOUT_S: Final = 20.0


def register(app: faust.App, settings: Settings, reader: ChangelogReader) -> None:
    """Add the period API to the worker's web server and run ``reader`` with the worker."""

    @app.service
    class CountsChangelogReader(Service):
        """Runs the reader for as long as the worker runs."""

        @Service.task
        async def _follow(self) -> None:
            await reader.run()

        async def on_stop(self) -> None:
            await reader.stop()

    @app.page("/api/v1/counts")
    class Counts(View):
        """Exact totals for a date range, optionally filtered and grouped."""

        async def get(self, request: Request) -> Response:
            started = time.monotonic()
            try:
                query = parse_query(
                    parse_qsl(request.query_string, keep_blank_values=True), settings.forces
                )
            except ParamError as exc:
                log.info("counts_bad_request", parameter=exc.parameter)
                return self.json(exc.body(), status=400)
            try:
                await reader.catch_up(CATCH_UP_TIMEOUT_S)
            except NotCaughtUp as exc:
                log.warning("counts_unavailable", reason=str(exc))
                return self.json(
                    {"error": "unavailable", "message": str(exc)},
                    status=503,
                    headers={"Retry-After": "5"},
                )
            body = answer(
                reader.between(query.start, query.end),
                query,
                settings.forces,
                settings.timezone,
            )
            log.debug(
                "counts_answered",
                days=(query.end - query.start).days + 1,
                group_by=query.group_by,
                ms=round((time.monotonic() - started) * 1000, 1),
            )
            return self.json(body)
