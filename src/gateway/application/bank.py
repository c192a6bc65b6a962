"""What the application asks of a bank and what a bank can answer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BankRequest:
    """One authorization. Holds card data in clear: lives only for the bank call."""

    idempotency_key: str
    card_number: str = field(repr=False)
    expiry_month: int
    expiry_year: int
    cvv: str = field(repr=False)
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Authorized:
    authorization_code: str


@dataclass(frozen=True, slots=True)
class Declined:
    decline_code: str


@dataclass(frozen=True, slots=True)
class Pending:
    """The bank will decide later and call back."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The bank refused the request itself (HTTP 400): not retried."""

    message: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The bank could not be reached or kept failing after every retry."""

    message: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """A status lookup for a key the bank never saw."""


BankOutcome = Authorized | Declined | Pending | Rejected | Unavailable | Unknown
