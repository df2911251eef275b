"""The counts table's in-memory data: a mapping of count keys in about half the memory.

A dict of count keys holds one key string per bucket (``c|r|3|h|490017|lancashire,
east,...``, about 120 bytes each) for a value of 48; a replay of a million events
makes about a million such keys. :class:`CountStore` is the same mapping (same keys,
values and iteration contents) stored as one dict per series, the key without its
bucket (``c|r|3|h|lancashire,east,...``), from the bucket as an int to the value.
Keys of another shape (``d|``, ``x|``, ``o|``, or a bucket not written as a plain
decimal) are kept in a plain dict. Faust's memory store holds it as its ``data``
(:func:`install`), so recovery, standbys and the counter all use it.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, MutableMapping
from typing import Any

from streams import shared_ints
from streams.shared_ints import shared

_SHARED = shared_ints.table()


def _split(key: str) -> tuple[str, int] | None:
    """(series, bucket) of a count key whose bucket is a plain decimal, else None."""
    if not key.startswith("c|"):
        return None
    parts = key.split("|", 5)
    if len(parts) != 6:
        return None
    bucket = parts[4]
    if "|" in parts[5]:
        return None  # the series would not split back into its labels
    if not (bucket.isascii() and bucket.isdigit()) or (bucket[0] == "0" and bucket != "0"):
        return None  # int() would not give the same text back
    n = int(bucket)
    shared_n = _SHARED.get(n)  # streams/shared_ints.py's shared(), inlined
    return f"c|{parts[1]}|{parts[2]}|{parts[3]}|{parts[5]}", shared(
        n
    ) if shared_n is None else shared_n


class CountStore(MutableMapping[str, Any]):
    """A ``dict[str, Any]`` of count keys, grouped by series (see the module docstring)."""

    def __init__(self) -> None:
        self._series: dict[str, dict[int, Any]] = {}
        self._other: dict[str, Any] = {}
        self._size = 0

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        where = _split(key)
        if where is None:
            return self._other.get(key, default)
        buckets = self._series.get(where[0])
        return default if buckets is None else buckets.get(where[1], default)

    def get_count(self, key: str, series: str, bucket: int) -> Any:
        """``get(key)`` for a count key the caller built from its parts, without splitting it.

        ``key`` must be ``c|<code>|<p>|<res>|<bucket>|<labels>`` with ``series`` the same
        without ``<bucket>|`` (labels without ``|``); a negative bucket is not a plain
        decimal and is looked up as :meth:`get` would.
        """
        if bucket < 0:
            return self.get(key)
        buckets = self._series.get(series)
        return None if buckets is None else buckets.get(bucket)

    def set_count(self, key: str, series: str, bucket: int, value: Any) -> None:
        """``self[key] = value`` for a count key given with its parts (as :meth:`get_count`)."""
        if bucket < 0:
            self[key] = value
            return
        buckets = self._series.get(series)
        if buckets is None:
            buckets = self._series[series] = {}
        if bucket not in buckets:
            self._size += 1
            shared_n = _SHARED.get(bucket)  # one object per bucket number
            bucket = shared(bucket) if shared_n is None else shared_n
        buckets[bucket] = value

    def __getitem__(self, key: str) -> Any:
        where = _split(key)
        if where is None:
            return self._other[key]
        buckets = self._series.get(where[0])
        if buckets is None or where[1] not in buckets:
            raise KeyError(key)
        return buckets[where[1]]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        where = _split(key)
        if where is None:
            return key in self._other
        buckets = self._series.get(where[0])
        return buckets is not None and where[1] in buckets

    def __setitem__(self, key: str, value: Any) -> None:
        where = _split(key)
        if where is None:
            if key not in self._other:
                self._size += 1
            self._other[key] = value
            return
        series, bucket = where
        buckets = self._series.get(series)
        if buckets is None:
            buckets = self._series[series] = {}
        if bucket not in buckets:
            self._size += 1
        buckets[bucket] = value

    def __delitem__(self, key: str) -> None:
        where = _split(key)
        if where is None:
            del self._other[key]
        else:
            series, bucket = where
            buckets = self._series.get(series)
            if buckets is None or bucket not in buckets:
                raise KeyError(key)
            del buckets[bucket]
            if not buckets:
                del self._series[series]
        self._size -= 1

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value (or the default, if given)."""
        try:
            value = self[key]
        except KeyError:
            if default:
                return default[0]
            raise
        del self[key]
        return value

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[str]:
        for key, _ in self._pairs():
            yield key

    def _pairs(self) -> Iterator[tuple[str, Any]]:
        yield from self._other.items()
        for series, buckets in self._series.items():
            head, _, labels = series.rpartition("|")
            for bucket, value in buckets.items():
                yield f"{head}|{bucket}|{labels}", value

    def items(self) -> ItemsView[str, Any]:
        """Every key and value (keys rebuilt from their series, as stored)."""
        return _Items(self)

    def keys(self) -> KeysView[str]:
        """Every key."""
        return KeysView(self)

    def clear(self) -> None:
        """Remove everything."""
        self._series.clear()
        self._other.clear()
        self._size = 0


class _Items(ItemsView[str, Any]):
    """Items without a lookup per key."""

    _mapping: CountStore

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return self._mapping._pairs()


def install(table: Any) -> CountStore:
    """Make a :class:`CountStore` the data of a Faust table's memory store; returns it."""
    store = table.data  # Faust creates the table's store on first use
    if not isinstance(store.data, dict) or store.data:
        raise RuntimeError("install the count store before the table holds data")
    counts = CountStore()
    store.data = counts
    return counts
