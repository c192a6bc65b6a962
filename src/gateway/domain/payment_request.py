"""Parsing a merchant's payment request: every field, every error at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from gateway.domain.card import Card, CardNumber, Cvv, Expiry, HolderName
from gateway.domain.errors import FieldError, ValidationFailed
from gateway.domain.money import Amount, Currency, Money
from gateway.domain.result import Err, Ok, Result
from gateway.domain.value_objects import Metadata, Reference

_MISSING = object()
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    money: Money
    card: Card
    reference: Reference | None
    metadata: Metadata


def _required(
    body: Mapping[str, object], name: str, param: str, errors: list[FieldError]
) -> object:
    value = body.get(name, _MISSING)
    if value is _MISSING or value is None:
        errors.append(FieldError(param, "field_required", f"{param} is required"))
        return _MISSING
    return value


class _Collector:
    """Runs each `create` and keeps every error."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def take(self, result: Result[T, FieldError]) -> T | None:
        match result:
            case Ok(value):
                return value
            case Err(error):
                self.errors.append(error)
                return None


def parse_payment_request(body: object, now: datetime) -> Result[PaymentRequest, ValidationFailed]:
    if not isinstance(body, dict):
        error = FieldError("body", "validation_error", "the body must be a JSON object")
        return Err(ValidationFailed((error,)))
    c = _Collector()
    raw_amount = _required(body, "amount", "amount", c.errors)
    raw_currency = _required(body, "currency", "currency", c.errors)
    amount = c.take(Amount.create(raw_amount)) if raw_amount is not _MISSING else None
    currency = c.take(Currency.create(raw_currency)) if raw_currency is not _MISSING else None
    card = _parse_card(_required(body, "card", "card", c.errors), now, c)
    reference = metadata = None
    if body.get("reference") is not None:
        reference = c.take(Reference.create(body["reference"]))
    if body.get("metadata") is not None:
        metadata = c.take(Metadata.create(body["metadata"]))
    if c.errors or amount is None or currency is None or card is None:
        return Err(ValidationFailed(tuple(c.errors)))
    return Ok(
        PaymentRequest(Money(amount, currency), card, reference, metadata or Metadata.empty())
    )


def _parse_card(raw: object, now: datetime, c: _Collector) -> Card | None:
    if raw is _MISSING:
        return None
    if not isinstance(raw, dict):
        c.errors.append(FieldError("card", "validation_error", "card must be an object"))
        return None
    raw_number = _required(raw, "number", "card.number", c.errors)
    raw_month = _required(raw, "expiry_month", "card.expiry_month", c.errors)
    raw_year = _required(raw, "expiry_year", "card.expiry_year", c.errors)
    raw_cvv = _required(raw, "cvv", "card.cvv", c.errors)
    number = c.take(CardNumber.create(raw_number)) if raw_number is not _MISSING else None
    expiry = _parse_expiry(raw_month, raw_year, now, c)
    scheme = number.scheme if number else None
    cvv = c.take(Cvv.create(raw_cvv, scheme)) if raw_cvv is not _MISSING else None
    holder = None
    if raw.get("holder_name") is not None:
        holder = c.take(HolderName.create(raw["holder_name"]))
    if number is None or expiry is None or cvv is None:
        return None
    return Card(number, expiry, cvv, holder)


def _parse_expiry(month: object, year: object, now: datetime, c: _Collector) -> Expiry | None:
    """Checks whichever of month and year is present, even when the other is missing."""
    missing = {
        param
        for param, raw in (("card.expiry_month", month), ("card.expiry_year", year))
        if raw is _MISSING
    }
    if len(missing) == 2:
        return None
    match Expiry.create(month, year, now):
        case Ok(value):
            return value
        case Err(errors):
            c.errors.extend(error for error in errors if error.param not in missing)
            return None
