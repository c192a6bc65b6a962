"""Ports: what the application needs from the outside world, as Protocols.

Adapters implement them; only `gateway.bootstrap` knows which adapter serves which port.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, Self

from gateway.application.bank import BankOutcome, BankRequest
from gateway.domain.card import Card
from gateway.domain.commands import MakePayment
from gateway.domain.merchant import ApiKey, Merchant
from gateway.domain.model import Job, Payment
from gateway.domain.result import Result


class CommitConflict(Exception):
    """The commit broke a uniqueness rule: another transaction wrote the same key first."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class IdGenerator(Protocol):
    def new(self, prefix: str) -> str:
        """A unique, time-ordered id such as `pay_01J…`: later ids sort after earlier ones."""
        ...


@dataclass(frozen=True, slots=True)
class CardUnreadable:
    """Sealed card data that fails authentication: tampered, or another key."""


class CardVault(Protocol):
    """Authenticated encryption of card data, bound to the payment it belongs to."""

    def seal(self, payment_id: str, card: Card) -> bytes: ...

    def open(self, payment_id: str, sealed: bytes) -> Result[Card, CardUnreadable]: ...


class Fingerprinter(Protocol):
    def fingerprint(self, body: object) -> str:
        """A keyed digest of a JSON value; equal for equal values, whatever the key order."""
        ...


class Bank(Protocol):
    async def authorize(self, request: BankRequest) -> BankOutcome:
        """Ask the bank once per payment; retries and lookups are the adapter's business."""
        ...

    async def lookup(self, idempotency_key: str) -> BankOutcome:
        """What the bank answered for that key (`Unknown` if it never saw it)."""
        ...


class KeyLocks(Protocol):
    def hold(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Enter to try to hold `name` in this process; yields False if it is taken."""
        ...


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    merchant_id: str
    key: str
    fingerprint: str
    job_id: str
    payment_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: str
    kind: str
    payload: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None


class PaymentRepository(Protocol):
    def add(self, payment: Payment) -> None: ...

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None: ...

    async def save(self, payment: Payment) -> None: ...


class JobRepository(Protocol):
    def add(self, job: Job) -> None: ...

    async def get(self, job_id: str) -> Job | None: ...

    async def save(self, job: Job) -> None: ...


class SealedCards(Protocol):
    def add(self, payment_id: str, sealed: bytes) -> None: ...

    async def get(self, payment_id: str) -> bytes | None: ...

    async def delete(self, payment_id: str) -> None: ...


class Outbox(Protocol):
    def add(self, command: MakePayment) -> None: ...


class IdempotencyRecords(Protocol):
    async def get(self, merchant_id: str, key: str) -> IdempotencyRecord | None: ...

    def add(self, record: IdempotencyRecord) -> None: ...


class Merchants(Protocol):
    def add(self, merchant: Merchant) -> None: ...

    async def get(self, merchant_id: str) -> Merchant | None: ...

    async def any(self) -> bool: ...

    def add_key(self, key: ApiKey) -> None: ...

    async def find_key(self, prefix: str) -> ApiKey | None: ...

    async def revoke_key(self, key_id: str, now: datetime) -> bool: ...

    async def list_keys(self, merchant_id: str) -> Sequence[ApiKey]: ...


class UnitOfWork(Protocol):
    """One transaction. Nothing is written until `commit()`; leaving rolls back the rest."""

    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def jobs(self) -> JobRepository: ...

    @property
    def cards(self) -> SealedCards: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def idempotency(self) -> IdempotencyRecords: ...

    @property
    def merchants(self) -> Merchants: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def commit(self) -> None:
        """Raises `CommitConflict` when a uniqueness rule is broken."""
        ...


class OutboxBatch(Protocol):
    @property
    def messages(self) -> Sequence[OutboxMessage]: ...

    async def mark_sent(self) -> None:
        """Marks every message of the batch sent and commits the claim."""
        ...


class OutboxStore(Protocol):
    """The relay's side of the outbox."""

    def claim(self, limit: int) -> AbstractAsyncContextManager[OutboxBatch]:
        """Up to `limit` unsent rows, oldest first, locked for this claimer until exit
        (`FOR UPDATE SKIP LOCKED` where the database has it). Leaving without
        `mark_sent()` releases them unsent."""
        ...


class Publisher(Protocol):
    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        """Returns once every message is safely handed over (confirmed); raises otherwise."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
