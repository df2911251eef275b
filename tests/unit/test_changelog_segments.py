"""streams/changelogs.py: existing changelogs get the configured segment roll; a broker
that refuses it (a principal without AlterConfigs) leaves a warning, not a failed start.
The real broker's side is tests/integration/test_changelogs.py."""

from __future__ import annotations

from typing import Any

import pytest

from streams import changelogs


class Admin:
    """KafkaAdminClient's describe_configs and alter_configs, as the module calls them."""

    def __init__(self, segment_ms: dict[str, str | None], answer: str = "OK") -> None:
        self.segment_ms, self.answer = segment_ms, answer
        self.altered: list[tuple[str, dict[str, str]]] = []

    def describe_configs(self, resources: list[Any]) -> dict[str, Any]:
        topics = {}
        for r in resources:
            value = self.segment_ms[r.name]
            topics[r.name] = {} if value is None else {"segment.ms": {"value": value}}
        return {"topic": topics}

    def alter_configs(self, resources: list[Any]) -> dict[str, Any]:
        self.altered += [(r.name, dict(r.configs)) for r in resources]
        return {"topic": {r.name: self.answer for r in resources}}


CONFIG = {"cleanup.policy": "compact", "segment.ms": "3600000"}


class Log:
    """Records the module's log calls (structlog's own capture depends on whether the
    logger was cached by an earlier test that configured logging)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append({"event": event, "log_level": "info", **kw})

    def warning(self, event: str, **kw: Any) -> None:
        self.events.append({"event": event, "log_level": "warning", **kw})


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    log = Log()
    monkeypatch.setattr(changelogs, "log", log)
    return log.events


def test_only_changelogs_with_another_roll_are_altered(logs: list[dict[str, Any]]) -> None:
    admin = Admin({"a": None, "b": "3600000", "c": "604800000"})
    changelogs._roll_segments(admin, ["a", "b", "c"], CONFIG)  # type: ignore[arg-type]
    assert admin.altered == [("a", {"segment.ms": "3600000"}), ("c", {"segment.ms": "3600000"})]
    assert [e["event"] for e in logs] == ["changelog_segments_set"]


def test_a_refused_alter_is_a_warning_that_names_the_fix(logs: list[dict[str, Any]]) -> None:
    admin = Admin({"a": None}, answer="TopicAuthorizationFailedError: denied")
    changelogs._roll_segments(admin, ["a"], CONFIG)  # type: ignore[arg-type]
    (event,) = logs
    assert event["log_level"] == "warning"
    assert event["event"] == "changelog_segments_not_set"
    assert event["errors"] == {"a": "TopicAuthorizationFailedError: denied"}
    assert "segment.ms=3600000" in event["fix"]


def test_nothing_to_do_without_existing_changelogs() -> None:
    admin = Admin({})
    changelogs._roll_segments(admin, [], CONFIG)  # type: ignore[arg-type]
    assert admin.altered == []
