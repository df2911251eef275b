"""The stream worker's table changelogs: their names, and creating them before it starts.

Faust creates a table's changelog topic (``<app id>-<table>-changelog``) while the
worker starts, and its consumer subscribes to it at the same time. When the group
was joined before the new topic's metadata was complete, the assignment's metadata
snapshot lacks it; aiokafka compares that snapshot at every metadata refresh
(every 5 minutes) and the leader re-joins the group ("Leader re-joining group during
Stable"). A worker replaying a long backlog then stopped, revoked everything and
restored its tables from the changelogs in the middle of the replay
(docs/performance.md). :func:`ensure_changelogs` creates the changelogs, compacted
as Faust would, before Faust starts, so the group is always joined with complete
metadata. An existing changelog whose partition count differs from the source
topics' stops start-up: Faust would write a key's counts to another partition.

Compaction: Kafka compacts a changelog's closed segments only, and by default rolls a
segment at 1 GiB or after 7 days, so a restarted worker read every write of the last
week (each count key is written again and again during a replay). The changelogs roll
a segment every ``OPS_CHANGELOG_SEGMENT_MS`` (an hour by default); an existing
changelog with another ``segment.ms`` is brought to it at start-up.
"""

from __future__ import annotations

from typing import Final

import structlog
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from opsmetrics.settings import Settings
from services.topics import admin_client, create_missing

log = structlog.get_logger(__name__)

#: The worker's tables (streams/app.py): counts, and first sightings of event ids.
TABLES: Final = ("counts", "seen")


def changelog_config(settings: Settings) -> dict[str, str]:
    """A changelog's topic configuration: compacted as Faust's (``compacting=True``),
    its segments rolled every ``changelog_segment_ms`` so that they can be compacted."""
    return {"cleanup.policy": "compact", "segment.ms": str(settings.changelog_segment_ms)}


def app_id(settings: Settings) -> str:
    """The Faust app id, which is also the worker's consumer group."""
    return f"{settings.topic_prefix}stream"


def changelog_topic(settings: Settings, table: str) -> str:
    """The changelog topic Faust uses for ``table``."""
    return f"{app_id(settings)}-{table}-changelog"


def changelog_topics(settings: Settings) -> list[str]:
    """Every table's changelog topic, in :data:`TABLES` order."""
    return [changelog_topic(settings, table) for table in TABLES]


def ensure_changelogs(settings: Settings, partitions: int) -> list[str]:
    """Create the missing changelogs with ``partitions`` partitions; return the names created.

    Raises ValueError naming the topic and the fix when an existing changelog has
    another partition count.
    """
    wanted = changelog_topics(settings)
    config = changelog_config(settings)
    admin = admin_client(settings)
    try:
        created, found = create_missing(
            admin, dict.fromkeys(wanted, config), partitions, settings.topic_replication
        )
        _roll_segments(admin, [name for name in wanted if name not in created], config)
    finally:
        admin.close()
    if created:
        log.info("changelogs_created", topics=created, partitions=partitions)
    for name in wanted:
        if found.get(name) != partitions:
            raise ValueError(
                f"changelog topic {name} has {found.get(name)} partitions but the event "
                f"topics have {partitions}; a changelog must match them. Delete the "
                f"stream's changelogs and consumer group ({app_id(settings)}) to rebuild "
                "the counts from the event topics, or recreate the event topics with "
                f"{found.get(name)} partitions (OPS_TOPIC_PARTITIONS)"
            )
    return created


def _roll_segments(admin: KafkaAdminClient, names: list[str], config: dict[str, str]) -> None:
    """Set ``segment.ms`` on the existing changelogs ``names`` that have another value."""
    if not names:
        return
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    )["topic"]
    wanted = config["segment.ms"]
    # Only values set on the topic are described ("modified"): none means the default.
    stale = [name for name in names if described[name].get("segment.ms", {}).get("value") != wanted]
    if not stale:
        return
    result = admin.alter_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, configs={"segment.ms": wanted})
            for name in stale
        ]
    ).get("topic", {})
    failed = {name: result.get(name) for name in stale if result.get(name) != "OK"}
    if failed:
        # Not fatal: the worker counts correctly either way, it only restores slower
        # (e.g. its principal may not alter topic configs on a secured cluster).
        log.warning(
            "changelog_segments_not_set",
            errors=failed,
            fix=f"set segment.ms={wanted} on these topics "
            "(kafka-configs.sh --alter --entity-type topics --add-config segment.ms=...)",
        )
    else:
        log.info("changelog_segments_set", topics=stale, segment_ms=int(wanted))
