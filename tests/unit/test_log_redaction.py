"""The log lines' second line of defence: no card number survives `redact` and the JSON
rendering, whatever shape the value has."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.entrypoints.logging import REDACTED, SENSITIVE_KEYS, redact, render_json

CARD_NUMBERS = st.from_regex(r"\A[1-9][0-9]{11,18}\Z")
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Nd", "Cs"]), max_size=12)


def _line(event: dict[str, Any]) -> str:
    return render_json(redact(None, "info", event))


def _nested(number: str) -> st.SearchStrategy[object]:
    leaves = st.one_of(
        st.just(number),
        st.builds(lambda a, b: f"{a}{number}{b}", TEXT, TEXT),
        st.just(int(number)),
        st.just(" ".join(number[i : i + 4] for i in range(0, len(number), 4))),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.tuples(inner, inner),
            st.dictionaries(st.sampled_from(["a", "note", "items"]), inner, max_size=3),
        ),
        max_leaves=6,
    )


@given(CARD_NUMBERS.flatmap(lambda n: st.tuples(st.just(n), _nested(n))), st.text(max_size=8))
def test_no_card_number_survives_any_value(case: tuple[str, object], key: str) -> None:
    number, value = case
    line = _line({"event": "seen", key or "value": value, "other": value})
    assert number not in line.replace(" ", "")
    json.loads(line)  # still one JSON object


@given(st.sampled_from(sorted(SENSITIVE_KEYS)), st.one_of(st.text(), st.integers(), st.none()))
def test_sensitive_keys_are_redacted_in_any_case(key: str, value: object) -> None:
    event = {"event": "e", key: value, key.upper(): value}
    assert set(json.loads(_line(event)).values()) == {"e", REDACTED}


@given(
    st.dictionaries(
        st.text(max_size=10).filter(lambda k: k.lower() not in SENSITIVE_KEYS),
        st.one_of(
            st.text(alphabet="abcXYZ-_ .:", max_size=20),
            st.integers(-(10**10), 10**10),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.none(),
        ),
    )
)
def test_values_without_digit_runs_are_kept_as_they_are(event: dict[str, object]) -> None:
    assert json.loads(_line(event)) == event


def test_card_numbers_in_other_scripts_digits_are_masked_too() -> None:
    arabic_indic = "٤١١١١١١١١١١١١١١١"  # 4111 1111 1111 1111
    fullwidth = "４２４２４２４２４２４２４２４２"  # 4242 4242 4242 4242
    line = _line({"event": "e", "note": f"paid with {arabic_indic}", "other": fullwidth})
    assert arabic_indic not in line
    assert fullwidth not in line


def test_ascii_text_with_twelve_digits_apart_is_kept() -> None:
    scattered = "a1b2c3d4e5f6g7h8i9j0k1l2"
    assert json.loads(_line({"event": "e", "note": scattered}))["note"] == scattered


def test_keys_that_are_not_strings_and_unknown_objects_still_render() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    line = _line({"event": "e", "by_id": {1: "one", None: 2}, "thing": Opaque()})
    assert json.loads(line) == {
        "event": "e",
        "by_id": {"1": "one", "None": 2},
        "thing": "Opaque()",
    }
