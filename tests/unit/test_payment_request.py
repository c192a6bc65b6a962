"""Parsing a whole payment request: every invalid field is reported at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.card import CardScheme
from gateway.domain.payment_request import parse_payment_request
from gateway.domain.result import Err, Ok
from gateway.domain.value_objects import Metadata

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
MISSING = object()
Expected = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Option:
    """One value a field may take, and the errors it must cause on its own."""

    value: object
    errors: Expected = frozenset()


def options(param: str, valid: list[object], invalid: dict[str, list[object]]) -> list[Option]:
    found = [Option(value) for value in valid]
    for code, values in invalid.items():
        found += [Option(value, frozenset({(param, code)})) for value in values]
    return found


AMOUNTS = options("amount", [1050, 1, 99_999_999_999], {
    "amount_invalid": [0, -5, 100_000_000_000, "1050", 10.5, True],
    "field_required": [MISSING, None],
})  # fmt: skip
CURRENCIES = options("currency", ["GBP", "JPY", "KWD"], {
    "currency_invalid": ["gbp", "G1P", "GB", 826],
    "currency_unsupported": ["XYZ"],
    "field_required": [MISSING],
})  # fmt: skip
HOLDERS = options("card.holder_name", ["Jane Doe", MISSING, None], {
    "validation_error": ["x" * 101, "tab\tname", 7],
})  # fmt: skip
REFERENCES = options("reference", ["ORD-001", MISSING, None], {
    "reference_invalid": ["", "r" * 51, 42],
})  # fmt: skip
METADATA = options("metadata", [{"customer": "c_42"}, {}, MISSING, None], {
    "metadata_invalid": [{"n": 1}, ["a"], {f"k{i}": "v" for i in range(21)}],
})  # fmt: skip
NUMBERS = {  # value -> scheme (None: invalid number)
    "4242424242424242": CardScheme.VISA,
    "378282246310005": CardScheme.AMEX,
    "4242424242424241": None,
    "42424242": None,
    4242424242424242: None,
}
MONTHS: list[object] = [12, 1, 11, 10, 0, 13, "12", True, MISSING, None]
YEARS: list[object] = [2030, 2026, 2025, 30, 10_000, "2030", MISSING]
CVVS: list[object] = ["123", "1234", "12", "12a", 123, MISSING]


def _present(value: object) -> bool:
    return value is not MISSING and value is not None


def expiry_errors(month: object, year: object) -> set[tuple[str, str]]:
    errors = set()
    for param, value, low, high in (
        ("card.expiry_month", month, 1, 12),
        ("card.expiry_year", year, 1000, 9999),
    ):
        if not _present(value):
            errors.add((param, "field_required"))
        elif type(value) is not int or not low <= value <= high:
            errors.add((param, param.replace("card.", "") + "_invalid"))
    if not errors and (year, month) < (NOW.year, NOW.month):
        errors.add(("card.expiry_year", "card_expired"))
    return errors


def card_errors(number: object, cvv: object) -> set[tuple[str, str]]:
    errors = set()
    if not _present(number):
        errors.add(("card.number", "field_required"))
    elif NUMBERS[number] is None:
        errors.add(("card.number", "card_number_invalid"))
    scheme = NUMBERS.get(number) if _present(number) else None
    lengths = {4} if scheme is CardScheme.AMEX else {3} if scheme else {3, 4}
    if not _present(cvv):
        errors.add(("card.cvv", "field_required"))
    elif not (isinstance(cvv, str) and cvv.isdigit() and len(cvv) in lengths):
        errors.add(("card.cvv", "cvv_invalid"))
    return errors


def put(target: dict[str, object], name: str, value: object) -> None:
    if value is not MISSING:
        target[name] = value


@st.composite
def cards(draw: st.DrawFn) -> tuple[object, Expected]:
    shape = draw(st.sampled_from(["object", "object", "object", "missing", "null", "string"]))
    if shape != "object":
        code = "validation_error" if shape == "string" else "field_required"
        value = {"missing": MISSING, "null": None, "string": "4242424242424242"}[shape]
        return value, frozenset({("card", code)})
    number, cvv = draw(st.sampled_from([*NUMBERS, MISSING])), draw(st.sampled_from(CVVS))
    month, year = draw(st.sampled_from(MONTHS)), draw(st.sampled_from(YEARS))
    holder = draw(st.sampled_from(HOLDERS))
    card: dict[str, object] = {"unknown_card_field": "ignored"}
    for name, value in (("number", number), ("cvv", cvv), ("expiry_month", month)):
        put(card, name, value)
    put(card, "expiry_year", year)
    put(card, "holder_name", holder.value)
    errors = card_errors(number, cvv) | expiry_errors(month, year) | holder.errors
    return card, frozenset(errors)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[dict[str, object], Expected]:
    body: dict[str, object] = {"unknown": draw(st.sampled_from([1, "x", None, [1], {"a": 1}]))}
    expected: set[tuple[str, str]] = set()
    for name, choices in (
        ("amount", AMOUNTS),
        ("currency", CURRENCIES),
        ("reference", REFERENCES),
        ("metadata", METADATA),
    ):
        option = draw(st.sampled_from(choices))
        put(body, name, option.value)
        expected |= option.errors
    card, card_expected = draw(cards())
    put(body, "card", card)
    return body, frozenset(expected | card_expected)


@given(bodies())
def test_every_invalid_field_is_reported_at_once(case: tuple[dict[str, object], Expected]) -> None:
    body, expected = case
    result = parse_payment_request(body, NOW)
    if not expected:
        assert isinstance(result, Ok)
        return
    assert isinstance(result, Err)
    reported = [(error.param, error.code) for error in result.error.errors]
    assert set(reported) == expected
    assert len(reported) == len(expected), "each field is reported once"
    assert all(error.message for error in result.error.errors)


def test_a_valid_body_becomes_a_payment_request_and_unknown_fields_are_ignored() -> None:
    body = {
        "amount": 1050,
        "currency": "GBP",
        "card": {
            "number": "378282246310005",
            "expiry_month": 11,
            "expiry_year": 2026,
            "cvv": "1234",
            "nickname": "ignored",
        },
        "captured": True,
    }
    result = parse_payment_request(body, NOW)
    assert isinstance(result, Ok)
    request = result.value
    assert (request.money.minor_units, request.money.currency.code) == (1050, "GBP")
    assert request.card.number.scheme is CardScheme.AMEX
    assert (request.card.expiry.month, request.card.expiry.year) == (11, 2026)
    assert request.card.holder_name is None
    assert request.reference is None
    assert request.metadata == Metadata.empty()


def test_several_broken_fields_are_all_reported() -> None:
    body = {
        "amount": "10",
        "currency": "gbp",
        "card": {"number": "4242424242424241", "expiry_month": 13, "cvv": "1"},
        "metadata": [],
    }
    result = parse_payment_request(body, NOW)
    assert isinstance(result, Err)
    assert {(e.param, e.code) for e in result.error.errors} == {
        ("amount", "amount_invalid"),
        ("currency", "currency_invalid"),
        ("card.number", "card_number_invalid"),
        ("card.expiry_month", "expiry_month_invalid"),
        ("card.expiry_year", "field_required"),
        ("card.cvv", "cvv_invalid"),
        ("metadata", "metadata_invalid"),
    }


@given(
    st.one_of(st.lists(st.integers(), max_size=2), st.text(max_size=3), st.none(), st.integers())
)
def test_a_body_that_is_not_an_object_is_a_validation_error(body: object) -> None:
    result = parse_payment_request(body, NOW)
    assert isinstance(result, Err)
    assert [(e.param, e.code) for e in result.error.errors] == [("body", "validation_error")]
