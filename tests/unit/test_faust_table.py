"""FaustTable over a real Faust table: the store it writes, and the records it queues."""

from __future__ import annotations

from pathlib import Path

import faust
import orjson
import pytest

from streams import count_store
from streams.app import FaustTable


def test_counts_table_reads_and_writes_its_count_store(tmp_path: Path) -> None:
    app = faust.App("faust-table-test", datadir=str(tmp_path), store="memory://")
    counts = app.Table("counts", partitions=4)
    store = count_store.install(counts)
    table = FaustTable(counts)
    assert table.data is store
    key = "c|r|2|h|491234|lancashire,east,nca,high"
    table.put(2, key, (5 << 80) | (5 << 40) | 17, [5, 5, 17])  # packed in memory
    table.put(2, "o|r|2", [18])
    assert table.get(key) == (5 << 80) | (5 << 40) | 17
    assert table.get_count(key, "c|r|2|h|lancashire,east,nca,high", 491234) == table.get(key)
    assert table.get_count(key.replace("491234", "491235"), "c|r|2|h|x", 491235) is None
    assert counts.data.data is store  # what Faust's recovery and standbys write to
    assert dict(table.items()) == {key: (5 << 80) | (5 << 40) | 17, "o|r|2": [18]}
    # The changelog gets Faust's JSON of the key and of the record, not the packed int.
    assert table.pending == [
        (2, orjson.dumps(key), b"[5,5,17]"),
        (2, b'"o|r|2"', b"[18]"),
    ]
    table.put(2, key, None)
    assert table.get(key) is None
    assert table.pending[-1] == (2, orjson.dumps(key), None)
    table.keep("o|r|2", [19])  # memory only
    assert len(table.pending) == 3


def test_a_plain_table_answers_get_count_by_key(tmp_path: Path) -> None:
    app = faust.App("faust-table-test-2", datadir=str(tmp_path), store="memory://")
    seen = FaustTable(app.Table("seen", partitions=4))
    assert isinstance(seen.data, dict)
    seen.put(1, "s|1|20000|r5", b"compressed", b"[]")
    assert seen.get_count("s|1|20000|r5", "ignored", 0) == b"compressed"
    assert seen.pending == [(1, b'"s|1|20000|r5"', b"[]")]


def test_records_are_fausts_json_and_other_codecs_are_refused(tmp_path: Path) -> None:
    app = faust.App("faust-table-test-3", datadir=str(tmp_path), store="memory://")
    counts = app.Table("counts", partitions=4)
    table = FaustTable(counts)
    key, record = "c|w|0|t|0|", [3, 2, 41]
    table.put(0, key, record)
    topic = counts.changelog_topic
    assert table.pending == [
        (0, topic.prepare_key(key, "json")[0], topic.prepare_value(record, "json")[0])
    ]
    raw = app.Table("raw", partitions=4, value_type=bytes)
    with pytest.raises(ValueError, match="table raw: FaustTable writes json"):
        FaustTable(raw)
