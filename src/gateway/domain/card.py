"""Card value objects. The number and the CVV never show in `repr` or `str`."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from gateway.domain.errors import FieldError
from gateway.domain.result import Err, Ok, Result


class CardScheme(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    JCB = "jcb"
    DINERS = "diners"
    UNIONPAY = "unionpay"
    UNKNOWN = "unknown"


# (scheme, inclusive prefix ranges); the first match wins, so narrower ranges come first.
_SCHEME_RANGES: tuple[tuple[CardScheme, tuple[tuple[int, int], ...]], ...] = (
    (CardScheme.AMEX, ((34, 34), (37, 37))),
    (CardScheme.DINERS, ((300, 305), (3095, 3095), (36, 36), (38, 39))),
    (CardScheme.JCB, ((3528, 3589),)),
    (CardScheme.MASTERCARD, ((51, 55), (2221, 2720))),
    (CardScheme.DISCOVER, ((6011, 6011), (644, 649), (65, 65))),
    (CardScheme.UNIONPAY, ((62, 62),)),
    (CardScheme.VISA, ((4, 4),)),
)


_PREFIX_LENGTHS = sorted({len(str(low)) for _, ranges in _SCHEME_RANGES for low, _ in ranges})


# A doubled Luhn digit, its two digits summed: 5 → 10 → 1, 9 → 18 → 9.
_DOUBLED = str.maketrans("0123456789", "0246813579")


def luhn_valid(digits: str) -> bool:
    """`digits` (ASCII digits) pass the Luhn check. Every digit, the doubled ones already
    summed, becomes one character, and their bytes are summed in C."""
    mixed = (digits[-1::-2] + digits[-2::-2].translate(_DOUBLED)).encode()
    return (sum(mixed) - 48 * len(mixed)) % 10 == 0


def detect_scheme(digits: str) -> CardScheme:
    return _scheme_of_prefix(digits[: _PREFIX_LENGTHS[-1]])


@functools.cache  # at most 10,000 prefixes of four digits
def _scheme_of_prefix(head: str) -> CardScheme:
    prefixes = {length: int(head[:length]) for length in _PREFIX_LENGTHS}
    for scheme, ranges in _SCHEME_RANGES:
        for low, high in ranges:
            if low <= prefixes[len(str(low))] <= high:
                return scheme
    return CardScheme.UNKNOWN


@dataclass(frozen=True, slots=True)
class CardNumber:
    digits: str = field(repr=False)
    scheme: CardScheme

    @classmethod
    def create(cls, raw: object, param: str = "card.number") -> Result[CardNumber, FieldError]:
        valid = (
            isinstance(raw, str)
            and 12 <= len(raw) <= 19
            and raw.isascii()
            and raw.isdigit()
            and luhn_valid(raw)
        )
        if not valid:
            return Err(FieldError(param, "card_number_invalid", "must be 12-19 digits, Luhn-valid"))
        assert isinstance(raw, str)
        return Ok(cls(raw, detect_scheme(raw)))

    @property
    def bin(self) -> str:
        return self.digits[:6]

    @property
    def last4(self) -> str:
        return self.digits[-4:]

    def __str__(self) -> str:
        return f"{self.bin}{'*' * (len(self.digits) - 10)}{self.last4}"


@dataclass(frozen=True, slots=True)
class Cvv:
    digits: str = field(repr=False)

    @classmethod
    def create(
        cls, raw: object, scheme: CardScheme | None, param: str = "card.cvv"
    ) -> Result[Cvv, FieldError]:
        """`scheme` None means the card number was invalid: accept 3 or 4 digits."""
        lengths = {4} if scheme is CardScheme.AMEX else {3} if scheme else {3, 4}
        if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit()):
            return Err(FieldError(param, "cvv_invalid", "must be a string of digits"))
        if len(raw) not in lengths:
            expected = "4 digits for American Express, 3 otherwise"
            return Err(FieldError(param, "cvv_invalid", f"must be {expected}"))
        return Ok(cls(raw))

    def __str__(self) -> str:
        return "***"


@dataclass(frozen=True, slots=True)
class Expiry:
    month: int
    year: int

    @classmethod
    def create(
        cls, month: object, year: object, now: datetime, param: str = "card"
    ) -> Result[Expiry, tuple[FieldError, ...]]:
        """Valid through the last day of its month (UTC); `now` is an aware datetime."""
        errors: list[FieldError] = []
        if type(month) is not int or not 1 <= month <= 12:
            errors.append(
                FieldError(f"{param}.expiry_month", "expiry_month_invalid", "must be 1-12")
            )
        if type(year) is not int or not 1000 <= year <= 9999:
            errors.append(
                FieldError(f"{param}.expiry_year", "expiry_year_invalid", "must be a 4-digit year")
            )
        if errors:
            return Err(tuple(errors))
        assert type(month) is int
        assert type(year) is int
        today = now.astimezone(UTC) if now.tzinfo else now
        if (year, month) < (today.year, today.month):
            return Err(
                (FieldError(f"{param}.expiry_year", "card_expired", "the card has expired"),)
            )
        return Ok(cls(month, year))


@dataclass(frozen=True, slots=True)
class HolderName:
    value: str

    @classmethod
    def create(cls, raw: object, param: str = "card.holder_name") -> Result[HolderName, FieldError]:
        if not isinstance(raw, str) or len(raw) > 100 or not raw.isprintable():
            message = "must be a printable string of at most 100 characters"
            return Err(FieldError(param, "validation_error", message))
        return Ok(cls(raw))


@dataclass(frozen=True, slots=True)
class Card:
    """A validated card as a merchant sent it. Lives in memory only until sealed."""

    number: CardNumber
    expiry: Expiry
    cvv: Cvv
    holder_name: HolderName | None

    def summary(self) -> CardSummary:
        return CardSummary(
            scheme=self.number.scheme,
            bin=self.number.bin,
            last4=self.number.last4,
            expiry_month=self.expiry.month,
            expiry_year=self.expiry.year,
            holder_name=self.holder_name.value if self.holder_name else None,
        )


@dataclass(frozen=True, slots=True)
class CardSummary:
    """What may be stored and shown of a card: never more than BIN and last four."""

    scheme: CardScheme
    bin: str
    last4: str
    expiry_month: int
    expiry_year: int
    holder_name: str | None
