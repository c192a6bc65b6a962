"""Errors the domain and the application report through `Err` (never raised)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a request: `param` is its dotted path, `code` is stable."""

    param: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ValidationFailed:
    errors: tuple[FieldError, ...]


@dataclass(frozen=True, slots=True)
class NotFound:
    resource: str


@dataclass(frozen=True, slots=True)
class IdempotencyKeyInvalid:
    message: str


@dataclass(frozen=True, slots=True)
class IdempotencyKeyReused:
    """The key was answered before, for another request body."""


@dataclass(frozen=True, slots=True)
class IdempotencyKeyInProgress:
    """Another request with the same key is still being answered."""


@dataclass(frozen=True, slots=True)
class InvalidTransition:
    """An aggregate was asked to leave a state it cannot leave that way."""

    entity: str
    current: str
    requested: str


@dataclass(frozen=True, slots=True)
class SignatureRejected:
    """A signed request whose signature is missing, wrong or outside the time tolerance."""

    reason: str


@dataclass(frozen=True, slots=True)
class PaymentAlreadyFinal:
    """The payment was settled before, with another outcome than the one now reported."""

    status: str
