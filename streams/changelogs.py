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
"""

from __future__ import annotations

from typing import Final

import structlog

from opsmetrics.settings import Settings
from services.topics import admin_client, create_missing

log = structlog.get_logger(__name__)

#: The worker's tables (streams/app.py): counts, and first sightings of event ids.
TABLES: Final = ("counts", "seen")

#: Faust's configuration of a table changelog (``compacting=True``).
CHANGELOG_CONFIG: Final = {"cleanup.policy": "compact"}


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
    admin = admin_client(settings)
    try:
        created, found = create_missing(
            admin, dict.fromkeys(wanted, CHANGELOG_CONFIG), partitions, settings.topic_replication
        )
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
