"""The backfilled scenario shared by the period tests, and calling the API."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from opsmetrics.settings import Settings
from services.contract.events import ArrestMade, ReferralReceived, WarrantExecuted
from services.simulator import Simulator
from tests.workers import Worker

#: Six months of simulated history (with a few days either side), 1 May - 31 October 2025:
#: British Summer Time ends on Sunday 26 October 2025 at 01:00 UTC.
START, END = date(2025, 5, 1), date(2025, 10, 31)
SIM_FROM, SIM_TO = datetime(2025, 4, 27, tzinfo=UTC), datetime(2025, 11, 4, tzinfo=UTC)
SEED = 11


@dataclass
class Scenario:
    settings: Settings
    workers: list[Worker]
    events: list[Any]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def edge_events() -> list[Any]:
    """Events just either side of local midnight at the period's edges and the clock change."""
    common: dict[str, Any] = {"version": 1, "force": "lancashire", "source": "test"}
    instants = [
        "2025-04-30T22:59:59+00:00",  # 23:59:59 BST on 30 April (before the period)
        "2025-04-30T23:00:00+00:00",  # 00:00 BST on 1 May (first day)
        "2025-10-25T22:59:59+00:00",  # 23:59:59 BST on Saturday 25 October
        "2025-10-25T23:00:00+00:00",  # 00:00 BST on Sunday 26 October
        "2025-10-26T00:59:59+00:00",  # 01:59:59 BST, just before clocks go back
        "2025-10-26T01:00:00+00:00",  # 01:00 GMT, the repeated hour
        "2025-10-26T23:59:59+00:00",  # 23:59:59 GMT on Sunday 26 October
        "2025-10-27T00:00:00+00:00",  # 00:00 GMT on Monday 27 October
        "2025-10-31T23:59:59+00:00",  # 23:59:59 GMT on 31 October (last day)
        "2025-11-01T00:00:00+00:00",  # 00:00 GMT on 1 November (after the period)
    ]
    out: list[Any] = []
    for n, text in enumerate(instants):
        at = _at(text)
        division = ("east", "south", "west")[n % 3]
        out.append(
            WarrantExecuted(
                **common,
                event_id=f"edge-w-{n}",
                type="warrant.executed",
                occurred_at=at,
                division=division,
                origin=("proactive", "referral")[n % 2],
            )
        )
        out.append(
            ArrestMade(
                **common,
                event_id=f"edge-a-{n}",
                type="arrest.made",
                occurred_at=at,
                division=division,
                origin="proactive",
                persons=n + 1,
                previously_known=n % 2 == 0,
            )
        )
        out.append(
            ReferralReceived(
                **common,
                event_id=f"edge-r-{n}",
                type="referral.received",
                occurred_at=at,
                division=division,
                referrer="iwf",
                risk="high",
            )
        )
    return out


def scenario_events(settings: Settings) -> list[Any]:
    """The simulator's history plus the edge events, in publishing order."""
    return [*Simulator(settings.forces, seed=SEED).generate(SIM_FROM, SIM_TO), *edge_events()]


def owned(worker: Worker) -> set[str]:
    """The source partitions a worker exports (actively owns)."""
    return {dict(k)["partition"] for k in worker.metrics().get("ops_worker_partition_active", {})}


def call(worker: Worker, query: str | dict[str, str] | None = None) -> tuple[int, Any]:
    """GET /api/v1/counts with a query; returns (status, JSON body)."""
    if isinstance(query, dict):
        query = urllib.parse.urlencode(query)
    url = f"{worker.url}/api/v1/counts" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - loopback test URL
            body: Any = json.loads(resp.read())
            return resp.status, body
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def counts(worker: Worker, **params: str) -> dict[str, Any]:
    """A successful answer (fails the test on any other status)."""
    status, body = call(worker, {k.rstrip("_"): v for k, v in params.items()})
    assert status == 200, body
    answer: dict[str, Any] = body
    return answer


def by_key(body: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, int | None]]:
    """The answer's groups keyed like tests/periods/expected.py (sorted key items)."""
    out: dict[tuple[Any, ...], dict[str, int | None]] = {}
    for group in body["groups"]:
        key = tuple(sorted(group["key"].items()))
        assert key not in out, f"group {key} listed twice"
        out[key] = group["totals"]
    return out
