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
from gateway.application.webhook_ports import Deliveries, MerchantEvents, WebhookEndpoints
from gateway.domain.card import Card
from gateway.domain.commands import DeliverWebhook, MakePayment
from gateway.domain.merchant import ApiKey, Merchant
from gateway.domain.model import Job, Payment
from gateway.domain.result import Result
from gateway.domain.webhooks import WebhookEndpoint


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
class NewPayment:
    """Everything one accepted payment writes: all of it, or nothing."""

    payment: Payment
    job: Job
    sealed_card: bytes
    command: MakePayment
    idempotency: IdempotencyRecord


class PaymentIntake(Protocol):
    async def accept(self, new: NewPayment, uow: UnitOfWork) -> IdempotencyRecord | None:
        """Stores `new` atomically, unless its merchant used its idempotency key before:
        then stores nothing and returns that earlier record. `uow` is this command's unit
        of work, for implementations that write through it. Raises `CommitConflict` when
        a concurrent request took the key and the outcome cannot be told yet."""
        ...


@dataclass(frozen=True, slots=True)
class PaymentWork:
    """What `make_payment` reads before it asks the bank: the payment and its job, the
    sealed card (None once the bank has seen the payment), whether a `202` from the bank
    is being waited for, and the merchant's webhook endpoints (not deleted, oldest first)."""

    payment: Payment
    job: Job | None
    sealed_card: bytes | None
    waiting: bool
    endpoints: Sequence[WebhookEndpoint] = ()


class PaymentProcessing(Protocol):
    """The reads and the write of a payment's trip to the bank, where the database can do
    each in one step; `uow` is the command's unit of work, for implementations that go
    through it."""

    async def load(self, payment_id: str, job_id: str, uow: UnitOfWork) -> PaymentWork | None:
        """None if there is no such payment."""
        ...

    async def settle(self, work: PaymentWork, payment: Payment, job: Job, uow: UnitOfWork) -> bool:
        """Stores `payment` and `job`, made final since `work` was read, with the payment's
        new events and a delivery per subscribed endpoint, and deletes the card data and
        any pending row, all in one transaction. Returns False, having stored nothing,
        when it cannot: the stored payment is final by now, or (where `load` read them)
        the merchant's endpoints changed since. The caller then goes through `uow`."""
        ...


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

    async def for_payment(self, payment_id: str) -> Job | None: ...

    async def save(self, job: Job) -> None: ...


class SealedCards(Protocol):
    def add(self, payment_id: str, sealed: bytes) -> None: ...

    async def get(self, payment_id: str) -> bytes | None: ...

    async def delete(self, payment_id: str) -> None: ...


class Outbox(Protocol):
    def add(self, command: MakePayment | DeliverWebhook) -> None: ...


class IdempotencyRecords(Protocol):
    async def get(self, merchant_id: str, key: str) -> IdempotencyRecord | None: ...

    def add(self, record: IdempotencyRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class PendingPayment:
    """A payment the bank answered `202` for: its status lookup is due at `next_lookup_at`."""

    payment_id: str
    job_id: str
    merchant_id: str
    pending_since: datetime
    next_lookup_at: datetime
    lookups: int = 0


class PendingPayments(Protocol):
    def add(self, pending: PendingPayment) -> None: ...

    async def get(self, payment_id: str) -> PendingPayment | None: ...

    async def reschedule(self, payment_id: str, next_lookup_at: datetime, lookups: int) -> None: ...

    async def delete(self, payment_id: str) -> None: ...

    async def claim_due(
        self, now: datetime, limit: int, lease_until: datetime
    ) -> Sequence[PendingPayment]:
        """Up to `limit` rows due at `now`, earliest first, moved to `lease_until` so that no
        other claimer takes them meanwhile (`FOR UPDATE SKIP LOCKED` where the database has
        it). Takes effect with the commit."""
        ...


@dataclass(frozen=True, slots=True)
class BankCallbackRecord:
    """The audit of one signature-valid callback; `outcome`: applied, duplicate or conflict."""

    event_id: str
    payment_id: str
    type: str
    outcome: str
    received_at: datetime
    signature_timestamp: datetime


class BankCallbacks(Protocol):
    async def get(self, event_id: str) -> BankCallbackRecord | None: ...

    def add(self, record: BankCallbackRecord) -> None:
        """At commit, an event id recorded before raises `CommitConflict`."""
        ...


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

    @property
    def pending_payments(self) -> PendingPayments: ...

    @property
    def bank_callbacks(self) -> BankCallbacks: ...

    @property
    def webhook_endpoints(self) -> WebhookEndpoints: ...

    @property
    def events(self) -> MerchantEvents: ...

    @property
    def deliveries(self) -> Deliveries: ...

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
