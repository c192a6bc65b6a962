"""Domain events: past tense, ids and primitives only, never card data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PaymentAuthorized:
    payment_id: str
    merchant_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentDeclined:
    payment_id: str
    merchant_id: str
    decline_code: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentFailed:
    payment_id: str
    merchant_id: str
    failure_code: str
    occurred_at: datetime


Event = PaymentAuthorized | PaymentDeclined | PaymentFailed
