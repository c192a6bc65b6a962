"""Card value objects against independent oracles; card data never shows in repr/str."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.domain.card import Card, CardNumber, CardScheme, Cvv, Expiry, HolderName
from gateway.domain.result import Err, Ok

DIGITS = "0123456789"


def luhn_oracle(number: str) -> bool:
    """Double every second digit from the right and add the digits of the products."""
    total = 0
    for position, char in enumerate(number[::-1], start=1):
        product = int(char) * (2 if position % 2 == 0 else 1)
        total += sum(int(d) for d in str(product))
    return total % 10 == 0


def with_check_digit(partial: str) -> str:
    return next(partial + d for d in DIGITS if luhn_oracle(partial + d))


def scheme_oracle(number: str) -> CardScheme:
    two, three, four = int(number[:2]), int(number[:3]), int(number[:4])
    if two in (34, 37):
        return CardScheme.AMEX
    if 300 <= three <= 305 or four == 3095 or two in (36, 38, 39):
        return CardScheme.DINERS
    if 3528 <= four <= 3589:
        return CardScheme.JCB
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return CardScheme.MASTERCARD
    if four == 6011 or 644 <= three <= 649 or two == 65:
        return CardScheme.DISCOVER
    if two == 62:
        return CardScheme.UNIONPAY
    if number.startswith("4"):
        return CardScheme.VISA
    return CardScheme.UNKNOWN


@st.composite
def luhn_numbers(draw: st.DrawFn, prefix: str = "") -> str:
    length = draw(st.integers(min_value=max(12, len(prefix) + 1), max_value=19))
    body = draw(st.text(DIGITS, min_size=length - 1 - len(prefix), max_size=length - 1))
    return with_check_digit((prefix + body)[: length - 1])


digit_strings = st.text(DIGITS, max_size=22)
any_number = st.one_of(digit_strings, luhn_numbers(), st.text(max_size=20))


@given(any_number)
@example("4242424242424242")
@example("42424242424242424242")
@example("٤٢٤٢٤٢٤٢٤٢٤٢")
@example("4242 4242 4242 4242")
def test_card_number_is_ok_iff_12_to_19_ascii_digits_and_luhn_valid(raw: str) -> None:
    valid = 12 <= len(raw) <= 19 and all(c in DIGITS for c in raw) and luhn_oracle(raw)
    result = CardNumber.create(raw)
    if valid:
        assert result == Ok(CardNumber(raw, scheme_oracle(raw)))
    else:
        assert isinstance(result, Err)
        assert (result.error.param, result.error.code) == ("card.number", "card_number_invalid")


@given(st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=3)))
def test_card_number_rejects_non_strings(raw: object) -> None:
    assert isinstance(CardNumber.create(raw), Err)


# Each scheme's ranges, their neighbours just outside, and prefixes of no scheme.
INSIDE = ["4", "34", "37", "300", "305", "3095", "36", "38", "39", "3528", "3589"]
INSIDE += ["51", "55", "2221", "2720", "2500", "6011", "644", "649", "65", "62"]
OUTSIDE = ["1", "7", "8", "9", "2220", "2721", "3527", "3590", "306", "6012", "643"]
OUTSIDE += ["35", "5", "50", "56", "60", "63"]
PREFIXES = st.sampled_from(INSIDE + OUTSIDE)


@given(PREFIXES.flatmap(luhn_numbers))
def test_scheme_follows_the_card_prefix(number: str) -> None:
    result = CardNumber.create(number)
    assert isinstance(result, Ok)
    assert result.value.scheme is scheme_oracle(number)


KNOWN_CARDS = {
    "4242424242424242": CardScheme.VISA,
    "4000056655665556": CardScheme.VISA,
    "5555555555554444": CardScheme.MASTERCARD,
    "2223003122003222": CardScheme.MASTERCARD,
    "378282246310005": CardScheme.AMEX,
    "371449635398431": CardScheme.AMEX,
    "6011111111111117": CardScheme.DISCOVER,
    "6500000000000002": CardScheme.DISCOVER,
    "3566002020360505": CardScheme.JCB,
    "30569309025904": CardScheme.DINERS,
    "36227206271667": CardScheme.DINERS,
    "6200000000000005": CardScheme.UNIONPAY,
}


def test_well_known_test_cards_get_their_schemes() -> None:
    for number, scheme in KNOWN_CARDS.items():
        result = CardNumber.create(number)
        assert isinstance(result, Ok), number
        assert result.value.scheme is scheme, number


@given(luhn_numbers())
def test_card_number_shows_only_bin_and_last_four(number: str) -> None:
    result = CardNumber.create(number)
    assert isinstance(result, Ok)
    card_number = result.value
    assert (card_number.bin, card_number.last4) == (number[:6], number[-4:])
    for text in (repr(card_number), str(card_number), f"{card_number}"):
        assert number not in text
    assert str(card_number) == number[:6] + "*" * (len(number) - 10) + number[-4:]


def cvv_oracle(raw: str, scheme: CardScheme | None) -> bool:
    if not raw or any(c not in DIGITS for c in raw):
        return False
    if scheme is None:
        return len(raw) in (3, 4)
    return len(raw) == (4 if scheme is CardScheme.AMEX else 3)


@given(
    st.one_of(st.text(DIGITS, max_size=6), st.text(max_size=5)),
    st.one_of(st.none(), st.sampled_from(CardScheme)),
)
def test_cvv_is_ok_iff_4_digits_for_amex_and_3_otherwise(
    raw: str, scheme: CardScheme | None
) -> None:
    result = Cvv.create(raw, scheme)
    if cvv_oracle(raw, scheme):
        assert result == Ok(Cvv(raw))
        assert raw not in repr(result.value)
        assert str(result.value) == "***"
    else:
        assert isinstance(result, Err)
        assert (result.error.param, result.error.code) == ("card.cvv", "cvv_invalid")


@given(st.one_of(st.integers(), st.none(), st.floats()))
def test_cvv_rejects_non_strings(raw: object) -> None:
    assert isinstance(Cvv.create(raw, CardScheme.VISA), Err)


def first_instant_after(month: int, year: int) -> datetime:
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
)


@given(st.integers(min_value=-2, max_value=14), st.integers(min_value=990, max_value=10_010))
def test_expiry_fields_are_ok_iff_month_1_12_and_four_digit_year(month: int, year: int) -> None:
    now = datetime(900, 1, 1, tzinfo=UTC)  # before any four-digit year: nothing has expired
    result = Expiry.create(month, year, now)
    month_ok, year_ok = 1 <= month <= 12, 1000 <= year <= 9999
    if month_ok and year_ok:
        assert result == Ok(Expiry(month, year))
        return
    assert isinstance(result, Err)
    params = {error.param for error in result.error}
    expected = {"card.expiry_month"} if not month_ok else set()
    expected |= {"card.expiry_year"} if not year_ok else set()
    assert params == expected


@given(
    st.integers(min_value=1, max_value=12), st.integers(min_value=2000, max_value=2099), instants
)
def test_card_is_valid_through_the_last_instant_of_its_month_in_utc(
    month: int, year: int, now: datetime
) -> None:
    result = Expiry.create(month, year, now)
    if now < first_instant_after(month, year):
        assert result == Ok(Expiry(month, year))
    else:
        assert isinstance(result, Err)
        assert [error.code for error in result.error] == ["card_expired"]


def test_expiry_edges_at_the_end_of_the_month() -> None:
    last_moment = datetime(2030, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert isinstance(Expiry.create(12, 2030, last_moment), Ok)
    assert isinstance(Expiry.create(12, 2030, last_moment + timedelta(microseconds=1)), Err)
    assert isinstance(Expiry.create(2, 2028, datetime(2028, 2, 29, 12, tzinfo=UTC)), Ok)
    # 00:30 on 1 January in UTC+1 is still 31 December in UTC.
    plus_one = datetime(2031, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert isinstance(Expiry.create(12, 2030, plus_one), Ok)


@given(
    st.one_of(st.booleans(), st.floats(), st.text(max_size=3), st.none()),
    st.one_of(st.booleans(), st.floats(), st.text(max_size=5), st.none()),
)
def test_expiry_rejects_non_integers_in_both_fields_at_once(month: object, year: object) -> None:
    result = Expiry.create(month, year, datetime(2026, 1, 1, tzinfo=UTC))
    assert isinstance(result, Err)
    assert [error.code for error in result.error] == ["expiry_month_invalid", "expiry_year_invalid"]


NOT_PRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"}


def printable_oracle(text: str) -> bool:
    return all(c == " " or unicodedata.category(c) not in NOT_PRINTABLE for c in text)


@given(st.one_of(st.text(max_size=110), st.text(min_size=95, max_size=105)))
@example("Jane\nDoe")
@example("José Ñúñez")
def test_holder_name_is_ok_iff_a_printable_string_of_at_most_100_chars(raw: str) -> None:
    result = HolderName.create(raw)
    if len(raw) <= 100 and printable_oracle(raw):
        assert result == Ok(HolderName(raw))
    else:
        assert isinstance(result, Err)
        assert result.error.param == "card.holder_name"


def test_card_repr_and_summary_never_hold_the_number_or_cvv() -> None:
    number = CardNumber("4242424242424242", CardScheme.VISA)
    card = Card(number, Expiry(12, 2030), Cvv("987"), HolderName("Jane Doe"))
    assert "4242424242424242" not in repr(card)
    assert "987" not in repr(card)
    summary = card.summary()
    assert (summary.scheme, summary.bin, summary.last4) == ("visa", "424242", "4242")
    assert (summary.expiry_month, summary.expiry_year, summary.holder_name) == (
        12,
        2030,
        "Jane Doe",
    )
    assert "4242424242424242" not in repr(summary)
