"""Scenario 6: hostile input never crashes or stalls the stream, and is dead-lettered right.

Without Kafka, hypothesis drives hostile messages (tests/reliability/hostile.py:
random bytes, deep nesting, huge numbers, NaN and infinities, overlong strings,
Unicode look-alikes in slugs, duplicate JSON keys, and every other contract rule)
through the classifier and through :meth:`EventCounter.handle`, the agent's whole
decision logic, with dict tables. ``OPS_FUZZ_EXAMPLES`` sets the examples per test
(10,000 by default). Then a sample goes through the real broker and a real worker,
and the dead-letter topic is read back: every rejected message is there once, with
its original bytes and key and the right reason.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsmetrics.settings import Settings
from services.contract.classify import Classifier, Rejected
from services.contract.events import EVENT_ADAPTER, TOPIC_OF, EventType
from services.publisher import Publisher
from services.topics import deadletter_topic
from streams.counter import DictTable, EventCounter, Result, canonical_partition, count_fields
from streams.labels import BY_TYPE
from tests.conftest import load_vector, vectors
from tests.reliability.common import (
    FORCES,
    FUZZ_EXAMPLES,
    HOSTILE_BROKER_SAMPLE,
    SEED,
    divisions,
    read_all,
    settle,
    source_messages,
    tally,
)
from tests.reliability.conftest import Pool, Scenario
from tests.reliability.hostile import Case, hostile_case
from tests.stream import truth

pytestmark = pytest.mark.reliability

P = 6
STALL_S = 2.0  # no single message may take longer than this to classify and apply
FORCE_DIVISIONS = {slug: divs for slug, (_, divs) in FORCES.items()}
TOPIC_CODES = {f"ops.{short}": BY_TYPE[etype].code for etype, short in TOPIC_OF.items()}
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # stalls are checked explicitly (STALL_S), not by hypothesis timing
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


class Agent:
    """The agent's logic without Kafka: a counter on dict tables, and what it must hold."""

    def __init__(self) -> None:
        self.classifier = Classifier.for_prefix("ops.", FORCE_DIVISIONS)
        self.counts, self.seen = DictTable(), DictTable()
        self.counter = EventCounter(
            self.classifier, TOPIC_CODES, P, self.counts, self.seen, ZoneInfo("Europe/London")
        )
        self.offsets: dict[int, int] = defaultdict(int)
        self.rejected: Counter[str] = Counter()
        self.counted: list[Any] = []
        self.ids: set[str] = set()
        self.cases = 0

    def feed(self, case: Case) -> None:
        """Classify and apply one message as the agent would; check the outcome."""
        topic = f"ops.{case.topic}"
        if case.reason is None and case.kind == "valid":
            partition = canonical_partition(case.event.event_id, P)
        else:
            partition = (hash(case.key) & 0x7FFFFFFF) % P
        offset = self.offsets[partition]
        self.offsets[partition] += 1
        now = datetime.now(UTC)
        started = time.monotonic()
        alone = self.classifier.classify(topic, case.value, now=now)
        outcome = self.counter.handle(topic, partition, offset, case.key, case.value, now)
        took = time.monotonic() - started
        self.cases += 1
        assert took < STALL_S, f"{case.kind} took {took:.1f} s"
        if case.reason is not None:
            assert isinstance(alone, Rejected), case
            assert alone.reason.value == case.reason, (case.kind, alone, case.value)
            assert outcome.result is Result.REJECTED, case.kind
            assert outcome.rejection == alone
            self.rejected[case.reason] += 1
            key = f"x|{TOPIC_CODES[topic]}|{partition}|{case.reason}"
            assert (
                count_fields(self.counts[key])[2] == offset
            )  # one write, carrying this message's offset
        elif case.kind == "valid_rekeyed":
            assert outcome.result is Result.REROUTED
            assert outcome.reroute_partition == canonical_partition(case.event.event_id, P)
        elif case.event.event_id in self.ids:
            assert outcome.result is Result.DUPLICATE
        else:
            assert outcome.result is Result.COUNTED, (outcome, case)
            self.ids.add(case.event.event_id)
            self.counted.append(case.event)

    def check_totals(self) -> None:
        """The tables hold exactly the rejections and the counted events fed."""
        rejected: Counter[str] = Counter()
        totals: dict[str, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))
        metric_of = {BY_TYPE[t].code: truth.COUNTER[t.value][0] for t in EventType}
        for key, value in self.counts.items():
            parts = key.split("|")
            if parts[0] == "x":
                rejected[parts[3]] += count_fields(value)[0]
            elif parts[0] == "c" and parts[3] == "t":
                totals[metric_of[parts[1]]][tuple(parts[5].split(","))] += count_fields(value)[0]
        assert rejected == self.rejected
        want = truth.totals(self.counted)
        assert {m: dict(v) for m, v in totals.items()} == {m: dict(v) for m, v in want.items()}


def test_contract_vectors_through_classifier_and_agent() -> None:
    agent = Agent()
    for path in vectors("valid") + vectors("invalid"):
        topic, value, reason = load_vector(path)
        short = topic.removeprefix("ops.")
        if reason is None:
            event = EVENT_ADAPTER.validate_python(json.loads(value))
            agent.feed(Case("valid", short, event.event_id.encode(), value, None, event))
        else:
            agent.feed(Case(path.stem, short, path.stem.encode(), value, reason))
    agent.check_totals()
    assert agent.cases == len(vectors("valid")) + len(vectors("invalid"))


def test_fuzz_hostile_messages_through_classifier_and_agent() -> None:
    """FUZZ_EXAMPLES hostile messages, each with the reason the contract gives it."""
    agent = Agent()
    kinds: Counter[str] = Counter()

    # Hypothesis draws a seed per message (a failure prints it, and replays it); drawing
    # every choice through st.randoms() instead costs ten times as much per example.
    @FUZZ
    @given(seed=st.integers(0, 2**64), n=st.integers(0, 10**6))
    def one(seed: int, n: int) -> None:
        case = hostile_case(random.Random(seed), FORCE_DIVISIONS, datetime.now(UTC), n)
        kinds[case.kind] += 1
        agent.feed(case)

    one()
    agent.check_totals()
    print(f"\nfuzzed {agent.cases} messages: {dict(sorted(kinds.items()))}")
    assert agent.cases >= FUZZ_EXAMPLES
    assert len(kinds) >= 18, kinds  # every kind of defect was drawn


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids, max_size=5)
    ),
    max_leaves=30,
)


@settings(FUZZ, max_examples=max(500, FUZZ_EXAMPLES // 10))
@given(
    topic=st.sampled_from([*TOPIC_CODES, "ops.deadletter"]),
    raw=st.one_of(
        st.binary(max_size=2048),
        json_values.map(lambda v: json.dumps(v).encode()),  # NaN/Infinity included
        st.dictionaries(
            st.sampled_from(["version", "event_id", "type", "occurred_at", "force", "division"])
            | st.text(max_size=8),
            json_values,
            max_size=12,
        ).map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    ),
)
def test_fuzz_arbitrary_bytes_and_json_never_crash_the_classifier(topic: str, raw: bytes) -> None:
    """Hypothesis-shaped bytes and JSON (a tenth of FUZZ_EXAMPLES: generating them is slow)."""
    classifier = Classifier.for_prefix("ops.", FORCE_DIVISIONS)
    started = time.monotonic()
    outcome = classifier.classify(topic, raw, now=datetime.now(UTC))
    assert time.monotonic() - started < STALL_S
    if topic == "ops.deadletter":
        assert isinstance(outcome, Rejected)  # nothing is ever valid on a non-event topic
    if isinstance(outcome, Rejected) and outcome.field is not None:
        assert outcome.field.isascii()  # a contract field name, never a key from the input
        assert len(outcome.field) < 40


@pytest.mark.timeout(600)
def test_hostile_sample_through_the_broker_and_a_worker(
    rel_settings: Settings, pool: Pool, scenario: Callable[[str], Scenario]
) -> None:
    rec = scenario("6. hostile input (broker sample)")
    rng = random.Random(f"{SEED}:hostile")
    now = datetime.now(UTC)
    cases = [
        hostile_case(rng, divisions(rel_settings), now, n) for n in range(HOSTILE_BROKER_SAMPLE)
    ]
    for path in vectors("valid") + vectors("invalid"):
        topic, value, reason = load_vector(path)
        short = topic.removeprefix("ops.")
        if reason is None:
            event = EVENT_ADAPTER.validate_python(json.loads(value))
            cases.append(Case("vector", short, event.event_id.encode(), value, None, event))
        else:
            cases.append(Case(f"vector:{path.stem}", short, path.stem.encode(), value, reason))
    worker = pool.start().wait_healthy()
    letters_wanted: dict[tuple[str, int, int], Case] = {}
    valid: list[Any] = []
    with Publisher(rel_settings, client_id="hostile") as pub:
        for case in cases:
            d = pub.send_raw(rel_settings.topic(case.topic), case.key, case.value)
            if case.reason is None:
                valid.append(case.event)
            else:
                letters_wanted[(d.topic, d.partition, d.offset)] = case
            assert worker.proc is not None
            assert worker.proc.poll() is None, "the worker died"
    rekeyed = sum(c.kind == "valid_rekeyed" for c in cases)
    total = source_messages(rel_settings)
    settled = settle([worker], total, timeout_s=300, rerouted=rekeyed)
    rec.events = len(cases)
    rec.messages = total
    rec.faults = f"{len(letters_wanted)} hostile messages, {rekeyed} valid ones keyed wrongly"
    result = tally(settled.samples, valid)
    rec.take(result)
    assert settled.complete, f"{settled.done} of {settled.expected} messages accounted for"
    assert worker.healthy(), "the worker is not healthy after the hostile input"
    result.assert_exact()
    rejected = {
        dict(k)["reason"]: int(v)
        for k, v in settled.samples[0]["ops_events_rejected_total"].items()
        if v
    }
    assert rejected == dict(Counter(c.reason for c in letters_wanted.values()))

    letters = read_all(rel_settings, deadletter_topic(rel_settings))
    got: dict[tuple[str, int, int], Any] = {}
    for letter in letters:
        h = {k: v.decode() for k, v in letter.headers}
        where = (h["source_topic"], int(h["source_partition"]), int(h["source_offset"]))
        assert where not in got, f"two dead letters for {where}"
        got[where] = (letter, h)
    assert set(got) == set(letters_wanted), "dead letters do not match the rejected messages"
    wrong = []
    for where, case in letters_wanted.items():
        letter, h = got[where]
        if (h["reason"], letter.value, letter.key) != (case.reason, case.value, case.key):
            wrong.append((case.kind, case.reason, h["reason"], where))
    assert not wrong, f"dead letters with the wrong reason, bytes or key: {wrong[:10]}"
    log = worker.log.read_text(errors="replace")
    assert "Traceback" not in log, f"the worker logged a traceback; see {worker.log}"
    rec.details = {"kinds": dict(Counter(c.kind for c in cases)), "letters": len(letters)}
