"""opsmetrics/logs.py: a library's exception keeps its traceback in the JSON line."""

from __future__ import annotations

import json
import logging

import pytest

from opsmetrics import logs


def test_a_library_exception_is_logged_with_its_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("INFO", "json")
        try:
            raise ValueError("Offset must be a positive integer")
        except ValueError as exc:
            logging.getLogger("faust.tables.recovery").error("Crashed reason=%r", exc, exc_info=exc)
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert line["event"].startswith("Crashed reason=ValueError")
    assert "Traceback (most recent call last)" in line["exception"]
    assert "test_a_library_exception_is_logged_with_its_traceback" in line["exception"]
