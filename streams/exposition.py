"""``/metrics`` in Prometheus text format, with each sample's name and labels cached.

prometheus_client's ``generate_latest`` sorts, escapes and formats every sample's
labels on every scrape; at 5 forces x 10 divisions that is about 19,000 samples and
most of the render time (docs/performance.md). The stream collector builds each
sample's label dict once and hands the same dict out on every scrape, so the text
before the value (``name{label="value",...} ``) is cached per (name, label dict) and
only the value is formatted. Output is byte-equal to ``generate_latest`` (tested);
samples with a timestamp, and label dicts seen for the first time, take the library's
own formatting.

A collector that can keep its own lines (the stream collector: a few thousand label
sets, most unchanged between scrapes) yields a :class:`RenderedMetric`, whose text is
written as it is; its ``samples`` are built only for readers that ask for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

_OM_SUFFIXES = ("_created", "_gsum", "_gcount")
_MIN_CACHE = 50_000
_LEGACY = openmetrics.UNDERSCORES
_value: Callable[[float], str] = floatToGoString  # the library's number format


def number(value: float) -> str:
    """The library's number format; whole numbers below a million without its checks."""
    if type(value) is int and -1_000_000 < value < 1_000_000:
        return f"{value}.0"  # what repr(float(value)) gives in that range
    return _value(value)


def _escape_value(value: str) -> str:
    # As generate_latest escapes label values (UTF-8 allowed, no name check).
    escaped: str = openmetrics._escape(value, openmetrics.ALLOWUTF8, False)  # type: ignore[arg-type]
    return escaped


def sample_prefix(name: str, labels: dict[str, str]) -> str:
    """``name{labels} `` exactly as generate_latest writes it (legacy escaping)."""
    metric = openmetrics.escape_metric_name(name, _LEGACY)
    if not labels:
        return f"{metric} "
    inner = ",".join(
        f'{openmetrics.escape_label_name(k, _LEGACY)}="{_escape_value(v)}"'
        for k, v in sorted(labels.items())
    )
    return f"{metric}{{{inner}}} "


class RenderedMetric(Metric):
    """A metric family that carries its sample lines already in the text format.

    ``body`` is every sample line (``sample_prefix(name, labels) + number(value)``),
    in order; :class:`TextRenderer` writes it after the family's HELP and TYPE. Other
    readers (``generate_latest``, tests) get ``samples``, built on first access.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        typ: str,
        body: str,
        samples: Callable[[], list[Sample]],
    ) -> None:
        super().__init__(name, documentation, typ)
        self.body = body
        self._make_samples: Callable[[], list[Sample]] | None = samples

    @property
    def samples(self) -> list[Sample]:
        """The samples the body holds (built once, when first read)."""
        if self._make_samples is not None:
            self._samples = self._make_samples()
            self._make_samples = None
        return self._samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._samples = value


class TextRenderer:
    """Renders a registry like ``generate_latest``, reusing the text of known samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # (sample name, id(labels)) -> [the labels dict itself, its text prefix, the last
        # value, its line]. The dict is kept so its id cannot be reused while cached.
        self._cache: dict[tuple[str, int], list[Any]] = {}
        self._generation = 0

    def _line(self, sample: Any, generation: int) -> str:
        if sample.timestamp is not None:
            ms = int(float(sample.timestamp) * 1000)
            prefix = sample_prefix(sample.name, sample.labels)
            return f"{prefix}{_value(sample.value)} {ms:d}\n"
        key = (sample.name, id(sample.labels))
        hit = self._cache.get(key)
        if hit is None or hit[0] is not sample.labels:
            hit = [sample.labels, sample_prefix(sample.name, sample.labels), None, "", 0]
            self._cache[key] = hit
        value = sample.value
        hit[2], hit[3], hit[4] = value, hit[1] + number(value) + "\n", generation
        line: str = hit[3]
        return line

    def render(self) -> bytes:
        """The registry's metrics in the text format 0.0.4."""
        self._generation += 1
        generation = self._generation
        out: list[str] = []
        append = out.append
        cache = self._cache
        for metric in self.registry.collect():
            mname, mtype = metric.name, metric.type
            if mtype == "counter":
                mname += "_total"
            elif mtype == "info":
                mname, mtype = mname + "_info", "gauge"
            elif mtype == "stateset":
                mtype = "gauge"
            elif mtype == "gaugehistogram":
                mtype = "histogram"
            elif mtype == "unknown":
                mtype = "untyped"
            doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
            name = openmetrics.escape_metric_name(mname, _LEGACY)
            append(f"# HELP {name} {doc}\n# TYPE {name} {mtype}\n")
            if isinstance(metric, RenderedMetric):
                append(metric.body)
                continue
            om_suffix = {metric.name + suffix: suffix for suffix in _OM_SUFFIXES}
            om: dict[str, list[str]] = {}
            for s in metric.samples:
                hit = cache.get((s.name, id(s.labels)))
                if (
                    hit is not None
                    and hit[0] is s.labels
                    and s.timestamp is None
                    and s.value == hit[2]
                    and type(s.value) is type(hit[2])
                ):
                    hit[4] = generation
                    text: str = hit[3]  # unchanged since the last scrape
                else:
                    text = self._line(s, generation)
                suffix = om_suffix.get(s.name)
                if suffix is None:
                    append(text)
                else:
                    om.setdefault(suffix, []).append(text)
            for suffix, lines in sorted(om.items()):
                om_name = openmetrics.escape_metric_name(metric.name + suffix, _LEGACY)
                append(f"# HELP {om_name} {doc}\n# TYPE {om_name} gauge\n")
                out.extend(lines)
        if len(cache) > 2 * _MIN_CACHE and generation % 16 == 0:
            # drop lines of label dicts that were not in the last 16 scrapes
            self._cache = {k: v for k, v in cache.items() if generation - v[4] < 16}
        return "".join(out).encode("utf-8")
