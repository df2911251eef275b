"""ReferralSpike end to end: Kafka -> worker -> Prometheus -> Alertmanager -> a webhook.

Everything is real: the broker, a worker process, Debian's Prometheus and
Alertmanager, the project's rule files and rendered Alertmanager routing. The
rules look weeks back (the same hours of the previous four weeks, and the
window's old edge ``offset W``), which a fresh Prometheus cannot have, so four
weeks of simulated history are both published to Kafka (the worker counts them)
and backfilled into the TSDB as the counters a scrape would have seen, ending ten
minutes before Prometheus starts.

Test-only changes, both to intervals: scrapes every second and the rule groups
evaluated every 2 s (``for: 1m`` is kept), and Alertmanager's group wait and
interval shortened through the template's own variables.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from alertmanager.render import render
from opsmetrics.settings import PROJECT_ROOT, Settings
from services.contract.events import ReferralReceived
from services.publisher import Publisher
from services.simulator import Simulator
from services.topics import ensure_topics
from tests.monitoring import Prometheus, Webhook, monitoring
from tests.stream.test_stream import wait_done
from tests.workers import WorkerPool, scrape, wait_for

pytestmark = pytest.mark.e2e

RULES = PROJECT_ROOT / "prometheus" / "rules"
HISTORY = timedelta(days=29, hours=2)  # four weeks plus the longest window checked
GAP = timedelta(minutes=10)  # the backfill ends this long before Prometheus starts
SURGE = 9  # referrals in a minute for one division: critical at the 1h window (8)


def _fast_rules(tmp: Path) -> list[Path]:
    """The project's rule files with every group evaluated every 2 s (only change)."""
    out = []
    for path in sorted(RULES.glob("*.yml")):
        text, _ = re.subn(r"(?m)^    interval: \S+$", "    interval: 2s", path.read_text())
        target = tmp / path.name
        target.write_text(text)
        out.append(target)
    return out


def _alertmanager(webhook: Webhook) -> dict[str, Any]:
    """alertmanager.yml rendered from the project's template, every receiver -> webhook."""
    env = {
        "OPS_ALERT_WEBHOOK_URL": webhook.url,
        "OPS_ALERT_CRITICAL_WEBHOOK_URL": webhook.url,
        "OPS_ALERT_WATCHDOG_URL": webhook.url,
        "OPS_ALERT_GROUP_WAIT": "1s",
        "OPS_ALERT_GROUP_INTERVAL": "5s",
    }
    template = (PROJECT_ROOT / "alertmanager" / "alertmanager.yml.tmpl").read_text()
    config: dict[str, Any] = yaml.safe_load(render(template, env))
    return config


def _history_openmetrics(path: Path, events: list[Any], partitions: int, end: datetime) -> None:
    """What scrapes of one worker would have recorded while ``events`` arrived.

    One counter per force and division (the rules sum them), a sample at every
    event and every four minutes (under the 5-minute lookback), and the partition
    coverage gauges of one worker owning every partition.
    """
    referrals: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in events:
        if e.type == "referral.received":
            referrals[(e.force, e.division)].append(int(e.occurred_at.timestamp()) + 1)
    start, stop = int((end - HISTORY).timestamp()), int(end.timestamp())
    keep = list(range(start, stop + 1, 240))
    lines = ["# TYPE ops_referrals_received counter\n"]
    for (force, division), times in sorted(referrals.items()):
        times.sort()
        labels = f'job="ops-stream",force="{force}",division="{division}"'
        count = 0
        for t in sorted(set(keep) | set(times)):
            while count < len(times) and times[count] <= t:
                count += 1
            lines.append(f"ops_referrals_received_total{{{labels}}} {count} {t}\n")
    lines.append("# TYPE ops_worker_partition_active gauge\n")
    for p in range(partitions):
        lines += [f'ops_worker_partition_active{{partition="{p}"}} 1 {t}\n' for t in keep]
    lines.append("# TYPE ops_source_partitions gauge\n")
    lines += [f"ops_source_partitions {partitions} {t}\n" for t in keep]
    lines.append("# EOF\n")
    path.write_text("".join(lines))


def _spikes(prom: Prometheus) -> list[dict[str, Any]]:
    return prom.query('ALERTS{alertname="ReferralSpike"}')


def _referral(n: int, at: datetime, division: str) -> ReferralReceived:
    return ReferralReceived(
        version=1,
        event_id=f"e2e-{division}-{n:03d}-{at.timestamp():.0f}",
        type="referral.received",
        occurred_at=at,
        force="lancashire",
        division=division,
        source="test",
        referrer="nca",
        risk="high",
    )


def test_a_referral_surge_pages_and_normal_traffic_does_not(
    kafka_settings: Settings, workers: WorkerPool, tmp_path: Path
) -> None:
    ensure_topics(kafka_settings)
    history_end = datetime.now(UTC) - GAP
    sim = Simulator(kafka_settings.forces, seed=41)
    events = list(sim.generate(history_end - HISTORY, history_end))
    worker = workers.start().wait_healthy()
    with Publisher(kafka_settings) as pub:
        pub.publish_many(events)
    wait_done([worker], len(events))
    partitions = int(scrape(worker.url + "/metrics")["ops_source_partitions"][()])
    history = tmp_path / "history.om"
    _history_openmetrics(history, events, partitions, history_end)

    webhook = Webhook()
    try:
        with monitoring(
            tmp_path, [worker.url], _fast_rules(tmp_path), _alertmanager(webhook), history=history
        ) as (prom, _):
            # The history is there: last week's same hour has data at the window's old edge.
            wait_for(
                lambda: prom.query("force:ops_referrals_received:increase24h"),
                90,
                "the 24h referral count (needs both the live scrape and the backfill)",
            )
            referral_times = [
                int(e.occurred_at.timestamp()) + 1 for e in events if e.type == "referral.received"
            ]

            def count_24h_matches() -> bool:
                got = prom.value('force:ops_referrals_received:increase24h{force="lancashire"}')
                since = time.time() - 86_400
                return got == sum(1 for t in referral_times if t > since)

            wait_for(count_24h_matches, 30, "the 24h count over live scrape and backfill")

            # Normal traffic: two referrals now, well within the Poisson tail.
            now = datetime.now(UTC)
            normal = [_referral(i, now, "south") for i in range(2)]
            with Publisher(kafka_settings) as pub:
                pub.publish_many(normal)
            wait_done([worker], len(events) + len(normal))
            assert prom.value('force:ops_referrals_received:threshold1h{force="lancashire"}')
            # Silent for longer than `for: 1m`, checked at every evaluation, and
            # nothing of it reached Alertmanager's webhook.
            quiet_until = time.monotonic() + 75
            while time.monotonic() < quiet_until:
                assert _spikes(prom) == [], "normal traffic raised ReferralSpike"
                time.sleep(1)
            # ...while the alerting path itself works (the always-firing Watchdog).
            wait_for(lambda: webhook.firing("Watchdog"), 60, "the Watchdog at the webhook")
            assert webhook.firing("ReferralSpike") == []

            # The surge: nine referrals in a minute for lancashire/east.
            now = datetime.now(UTC)
            surge = [_referral(i, now, "east") for i in range(SURGE)]
            with Publisher(kafka_settings) as pub:
                pub.publish_many(surge)
            pages = wait_for(
                lambda: [
                    (receiver, labels)
                    for receiver, labels in webhook.firing("ReferralSpike")
                    if labels.get("severity") == "critical"
                ],
                180,
                "a critical ReferralSpike at the webhook",
            )
            receivers = {receiver for receiver, _ in pages}
            assert receivers == {"ops-critical"}, pages
            where = {(lb["force"], lb.get("division"), lb["window"]) for _, lb in pages}
            assert ("lancashire", None, "1h") in where or ("lancashire", "east", "1h") in where
            assert all(lb.get("division") in (None, "east") for _, lb in pages), pages
    finally:
        webhook.close()
