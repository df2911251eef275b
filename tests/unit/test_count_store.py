"""CountStore is a dict of count keys: same answers for any keys and any operations."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.count_store import CountStore, _split, install

LABELS = st.sampled_from(["lancashire,east,nca,low", "kent,north", "", "a,b|c", "x"])
BUCKETS = st.sampled_from(["0", "7", "490017", "007", "-5", "1e3", "", "²", "12345678901234567890"])
KEYS = st.one_of(
    st.builds(
        lambda code, p, res, bucket, labels: f"c|{code}|{p}|{res}|{bucket}|{labels}",
        st.sampled_from("wasr"),
        st.sampled_from(["0", "3", "11"]),
        st.sampled_from("tdhm"),
        BUCKETS,
        LABELS,
    ),
    st.sampled_from(["d|w|0", "x|r|3|schema", "o|a|1", "c|w|0", "c|", "c|w|0|h|5", "s|1|2"]),
    st.text(max_size=12),
)
OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "del", "pop", "get", "in", "parts", "set_parts"]),
        KEYS,
        st.integers(),
    ),
    max_size=60,
)


@settings(max_examples=400)
@given(ops=OPS)
def test_behaves_as_a_dict(ops: list[tuple[str, str, int]]) -> None:
    store, ref = CountStore(), {}
    for op, key, value in ops:
        if op == "set":
            store[key] = ref[key] = value
        elif op == "del":
            if key in ref:
                del ref[key]
                del store[key]
            else:
                try:
                    del store[key]
                except KeyError:
                    pass
                else:
                    raise AssertionError(f"deleted {key!r}, which was never set")
        elif op == "pop":
            assert store.pop(key, None) == ref.pop(key, None)
        elif op == "get":
            assert store.get(key) == ref.get(key)
            assert store.get(key, -1) == ref.get(key, -1)
        elif op == "parts":  # the counter's lookup, with the key's parts
            parts = _split(key)
            if parts is not None:
                assert store.get_count(key, *parts) == ref.get(key)
        elif op == "set_parts":  # the counter's write, with the key's parts
            parts = _split(key)
            if parts is not None:
                store.set_count(key, *parts, value)
                ref[key] = value
        else:
            assert (key in store) == (key in ref)
        assert len(store) == len(ref)
    assert dict(store.items()) == ref
    assert sorted(store) == sorted(ref)
    assert sorted(store.keys()) == sorted(ref)
    assert len(store.items()) == len(ref)
    store.clear()
    assert len(store) == 0
    assert list(store.items()) == []


def test_update_and_pop_without_default() -> None:
    store = CountStore()
    store.update({"c|w|0|h|5|a,b": 1, "o|w|0": 2})
    assert store.pop("c|w|0|h|5|a,b") == 1
    try:
        store.pop("c|w|0|h|5|a,b")
    except KeyError:
        pass
    else:
        raise AssertionError("pop of a missing key without a default must raise")
    assert dict(store.items()) == {"o|w|0": 2}


def test_holds_count_keys_in_less_memory_than_a_dict() -> None:
    """The point of it: 20,000 hour keys of 50 series, in at most 65% of a dict's bytes
    (values as the counter's packed counts; about 56% measured)."""
    keys = [
        f"c|r|{p}|h|{490000 + h}|lancashire,division{d},nca,low"
        for p in range(5)
        for d in range(10)
        for h in range(400)
    ]
    sizes = []
    for kind in (dict, CountStore):
        tracemalloc.start()
        mapping: Any = kind()
        for i, key in enumerate(keys):
            # a fresh key string, as a decoded changelog key is; a packed count's size
            mapping["".join(key)] = (1 << 80) | (1 << 40) | i
        sizes.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
        assert len(mapping) == len(keys)
    assert sizes[1] < 0.65 * sizes[0], sizes


def test_installed_as_a_faust_memory_store_data(tmp_path: Path) -> None:
    """Faust's recovery path (apply_changelog_batch) writes and deletes through it."""
    app = faust.App("count-store-test", datadir=str(tmp_path), store="memory://")
    table = app.Table("counts", partitions=2)
    store = install(table)
    assert table.data.data is store

    def event(key: str, value: Any) -> Any:
        message = SimpleNamespace(partition=1, value=None if value is None else b"x")
        return SimpleNamespace(key=key, value=value, message=message)

    table.data.apply_changelog_batch(
        [event("c|w|1|h|5|a,b", [1, 1, 3]), event("o|w|1", [9]), event("c|w|1|d|7|a,b", [2, 2, 4])],
        to_key=lambda k: k,
        to_value=lambda v: v,
    )
    table.data.apply_changelog_batch(
        [event("c|w|1|h|5|a,b", None)], to_key=lambda k: k, to_value=lambda v: v
    )
    assert dict(table.data.items()) == {"o|w|1": [9], "c|w|1|d|7|a,b": [2, 2, 4]}


def test_bucket_numbers_are_shared_objects() -> None:
    """Equal bucket numbers of different keys, in the store and the view, are one object."""
    from streams import shared_ints
    from streams.view import CountsView

    store, view = CountStore(), CountsView()
    for labels in ("a,b", "c,d"):
        key = f"c|r|0|h|{490000 + 17}|{labels}"
        store["".join(key)] = 1
        view.set(key, [1, 1, 1])
    buckets = [b for bs in store._series.values() for b in bs]
    buckets += [b for part in view.series.values() for s in part.values() for b in s.hours]
    assert len(buckets) == 4
    assert len({id(b) for b in buckets}) == 1
    assert shared_ints.shared(10**12) is shared_ints.shared(int(str(10**12)))


def test_the_shared_table_is_bounded(monkeypatch: Any) -> None:
    from streams import shared_ints

    monkeypatch.setattr(shared_ints, "LIMIT", 100)
    monkeypatch.setattr(shared_ints, "_table", {})
    for n in range(1000, 1350):
        assert shared_ints.shared(n) == n
    assert len(shared_ints._table) <= 100


def test_a_negative_bucket_is_read_and_written_by_key() -> None:
    """A bucket before 1970 is not a plain decimal: kept with the other keys, found there."""
    store = CountStore()
    store["c|w|0|h|-5|a,b"] = 7
    assert store.get_count("c|w|0|h|-5|a,b", "c|w|0|h|a,b", -5) == 7
    store["c|w|0|h|-5|a,b"] = 8  # written after a lookup by parts: still one key
    assert dict(store.items()) == {"c|w|0|h|-5|a,b": 8}
    store.set_count("c|w|0|h|-5|a,b", "c|w|0|h|a,b", -5, 9)  # a write by parts: the same key
    assert dict(store.items()) == {"c|w|0|h|-5|a,b": 9}
    assert len(store) == 1
