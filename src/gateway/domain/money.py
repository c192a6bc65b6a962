"""Money: an integer amount of a currency's minor units."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from gateway.domain.errors import FieldError
from gateway.domain.result import Err, Ok, Result

MAX_AMOUNT = 99_999_999_999

# ISO 4217 alpha-3 code -> number of minor-unit digits (the exponent).
_EXPONENTS: dict[str, int] = {
    "AED": 2, "ARS": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2,
    "CLP": 0, "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2,
    "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0,
    "KRW": 0, "KWD": 3, "MXN": 2, "MYR": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PHP": 2,
    "PLN": 2, "QAR": 2, "RON": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TND": 3,
    "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip
SUPPORTED_CURRENCIES = MappingProxyType(_EXPONENTS)


def _is_upper_letters(raw: str) -> bool:
    return raw.isascii() and raw.isalpha() and raw.isupper()


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int

    @classmethod
    def create(cls, raw: object, param: str = "currency") -> Result[Currency, FieldError]:
        if not isinstance(raw, str) or len(raw) != 3 or not _is_upper_letters(raw):
            return Err(FieldError(param, "currency_invalid", "must be an upper-case ISO 4217 code"))
        exponent = SUPPORTED_CURRENCIES.get(raw)
        if exponent is None:
            return Err(FieldError(param, "currency_unsupported", f"{raw} is not supported"))
        return Ok(cls(raw, exponent))

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class Amount:
    """A positive count of minor units, at most `MAX_AMOUNT`."""

    minor_units: int

    @classmethod
    def create(cls, raw: object, param: str = "amount") -> Result[Amount, FieldError]:
        # bool is an int subclass: `true` is not an amount.
        if type(raw) is not int or not 0 < raw <= MAX_AMOUNT:
            return Err(
                FieldError(param, "amount_invalid", f"must be an integer from 1 to {MAX_AMOUNT}")
            )
        return Ok(cls(raw))


@dataclass(frozen=True, slots=True)
class Money:
    amount: Amount
    currency: Currency

    @property
    def minor_units(self) -> int:
        return self.amount.minor_units

    def __str__(self) -> str:
        units, exponent = self.amount.minor_units, self.currency.exponent
        if exponent == 0:
            return f"{units} {self.currency}"
        major, minor = divmod(units, 10**exponent)
        return f"{major}.{minor:0{exponent}d} {self.currency}"
