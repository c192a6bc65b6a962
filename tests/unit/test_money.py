"""Amount, Currency and Money: `create` is `Ok` exactly when the input is valid."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.money import MAX_AMOUNT, SUPPORTED_CURRENCIES, Amount, Currency, Money
from gateway.domain.result import Err, Ok

not_ints = st.one_of(
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.integers().map(str),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.decimals(allow_nan=False),
)


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_amount_is_ok_iff_an_integer_from_one_to_the_maximum(raw: int) -> None:
    result = Amount.create(raw)
    if 1 <= raw <= 99_999_999_999:
        assert result == Ok(Amount(raw))
    else:
        assert isinstance(result, Err)
        assert (result.error.param, result.error.code) == ("amount", "amount_invalid")


@given(not_ints)
def test_amount_rejects_bools_floats_strings_and_other_types(raw: object) -> None:
    result = Amount.create(raw)
    assert isinstance(result, Err)
    assert result.error.code == "amount_invalid"


def test_amount_bounds_are_exact() -> None:
    assert MAX_AMOUNT == 99_999_999_999
    assert isinstance(Amount.create(1), Ok)
    assert isinstance(Amount.create(MAX_AMOUNT), Ok)
    assert isinstance(Amount.create(0), Err)
    assert isinstance(Amount.create(MAX_AMOUNT + 1), Err)
    assert isinstance(Amount.create(True), Err)
    assert isinstance(Amount.create(1050.0), Err)
    assert isinstance(Amount.create("1050"), Err)


def test_amount_error_uses_the_given_param() -> None:
    result = Amount.create(-1, param="refund.amount")
    assert isinstance(result, Err)
    assert result.error.param == "refund.amount"


# An oracle independent of SUPPORTED_CURRENCIES for the currencies the contract names.
KNOWN_EXPONENTS = {"GBP": 2, "EUR": 2, "USD": 2, "JPY": 0, "KWD": 3}


def _is_code_shape(raw: str) -> bool:
    return len(raw) == 3 and all(char in string.ascii_uppercase for char in raw)


@given(st.one_of(st.text(max_size=5), st.text(alphabet=string.ascii_letters, max_size=4)))
def test_currency_is_ok_iff_three_upper_case_letters_and_supported(raw: str) -> None:
    result = Currency.create(raw)
    if not _is_code_shape(raw):
        assert isinstance(result, Err)
        assert result.error.code == "currency_invalid"
    elif raw in SUPPORTED_CURRENCIES:
        assert result == Ok(Currency(raw, SUPPORTED_CURRENCIES[raw]))
    else:
        assert isinstance(result, Err)
        assert result.error.code == "currency_unsupported"


@given(st.sampled_from(sorted(KNOWN_EXPONENTS)))
def test_contract_currencies_are_supported_with_their_exponents(code: str) -> None:
    assert Currency.create(code) == Ok(Currency(code, KNOWN_EXPONENTS[code]))


@given(st.one_of(st.integers(), st.none(), st.binary(max_size=3), st.booleans()))
def test_currency_rejects_non_strings(raw: object) -> None:
    result = Currency.create(raw)
    assert isinstance(result, Err)
    assert result.error.code == "currency_invalid"


def test_currency_codes_are_case_sensitive_and_exact() -> None:
    for raw in ("gbp", "Gbp", " GBP", "GBPP", "GB", "ÅBC", "G1P"):
        result = Currency.create(raw)
        assert isinstance(result, Err)
        assert result.error.code == "currency_invalid", raw
    unsupported = Currency.create("XYZ")
    assert isinstance(unsupported, Err)
    assert unsupported.error.code == "currency_unsupported"


def _expected_text(units: int, exponent: int, code: str) -> str:
    digits = str(units).rjust(exponent + 1, "0")
    if exponent == 0:
        return f"{digits} {code}"
    return f"{digits[:-exponent]}.{digits[-exponent:]} {code}"


@given(
    st.integers(min_value=1, max_value=MAX_AMOUNT),
    st.sampled_from(sorted(SUPPORTED_CURRENCIES)),
)
def test_money_prints_major_units_with_the_currency_exponent(units: int, code: str) -> None:
    currency = Currency(code, SUPPORTED_CURRENCIES[code])
    money = Money(Amount(units), currency)
    assert str(money) == _expected_text(units, currency.exponent, code)
    assert money.minor_units == units


def test_money_text_examples() -> None:
    assert str(Money(Amount(1050), Currency("GBP", 2))) == "10.50 GBP"
    assert str(Money(Amount(5), Currency("GBP", 2))) == "0.05 GBP"
    assert str(Money(Amount(1050), Currency("JPY", 0))) == "1050 JPY"
    assert str(Money(Amount(1), Currency("KWD", 3))) == "0.001 KWD"
    assert str(Money(Amount(12345), Currency("KWD", 3))) == "12.345 KWD"
