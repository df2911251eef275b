"""One backfilled scenario for the whole package: two real workers, a real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from opsmetrics.settings import Settings
from services.publisher import Publisher
from services.topics import ensure_topics
from tests.periods import expected
from tests.periods.scenario import END, START, Scenario, counts, owned, scenario_events
from tests.stream.test_stream import wait_done
from tests.workers import WorkerPool, wait_for


@pytest.fixture(scope="package")
def scenario(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """Two workers sharing the partitions, six months backfilled and fully counted."""
    tmp = tmp_path_factory.mktemp("periods")
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        data_dir=tmp / "run",
        log_format="console",
    )
    ensure_topics(settings)
    pool = WorkerPool(settings, tmp)
    try:
        a = pool.start().wait_healthy()
        b = pool.start().wait_healthy()

        def split() -> bool:
            mine, theirs = owned(a), owned(b)
            n = settings.topic_partitions
            return bool(mine and theirs and not mine & theirs and len(mine | theirs) == n)

        wait_for(split, 120, "both workers to own partitions")
        events = scenario_events(settings)
        with Publisher(settings) as pub:
            for i in range(0, len(events), 500):
                pub.publish_many(events[i : i + 500])
        wait_done([a, b], len(events))
        want, _ = expected.figures(events, START, END)

        def converged() -> bool:
            got = counts(a, from_=START.isoformat(), to=END.isoformat())["totals"]
            assert all(got[m] <= want[m] for m in want), (got, want)
            return bool(got == want)

        # the counted writes reach the changelog a moment after /metrics shows them
        wait_for(converged, 30, "the period API to reflect every counted event")
        yield Scenario(settings, [a, b], events)
    finally:
        pool.stop_all()
