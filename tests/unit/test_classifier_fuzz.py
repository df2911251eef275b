"""No input of any kind makes the classifier raise: it always returns an outcome."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.classify import Accepted, Classifier, Rejected
from services.contract.events import KNOWN_FIELDS

classifier = Classifier.for_prefix("ops.", {"lancashire": ["east", "south", "west"]})
TOPICS = st.sampled_from(["ops.warrants", "ops.arrests", "ops.safeguarding", "ops.referrals", "x"])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(sorted(KNOWN_FIELDS)) | st.text(max_size=12)


def _check(outcome: Any) -> None:
    assert isinstance(outcome, Accepted | Rejected)
    if isinstance(outcome, Rejected):
        assert outcome.reason in {
            "malformed",
            "schema",
            "type_mismatch",
            "unknown_division",
            "future",
            "too_large",
        }


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(topic=TOPICS, raw=st.binary(max_size=512))
def test_random_bytes(topic: str, raw: bytes) -> None:
    _check(classifier.classify(topic, raw))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(topic=TOPICS, obj=st.dictionaries(field_names, json_values, max_size=14))
def test_random_json_objects(topic: str, obj: dict[str, Any]) -> None:
    _check(classifier.classify(topic, json.dumps(obj).encode()))
