"""In-memory fakes for every port the handlers use. No mocks: small, real behaviour.

`FakeStore` is the "database" shared by every `FakeUnitOfWork`; a unit of work stages
its writes and applies them all at once on `commit()`, or none if a uniqueness rule
breaks (`CommitConflict`), and drops them when it is left without a commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Self

from gateway.adapters.crypto import AesGcmCardVault, HmacFingerprinter
from gateway.adapters.locks import InProcessKeyLocks
from gateway.application.bank import Authorized, BankOutcome, BankRequest, Unknown
from gateway.application.bank_callbacks import BankCallbackDeps, receive_bank_callback
from gateway.application.dead_letters import AbandonPaymentDeps, abandon_payment
from gateway.application.handlers import (
    MakePaymentDeps,
    RequestPaymentDeps,
    make_payment,
    request_payment,
)
from gateway.application.mediator import Behaviour, Mediator
from gateway.application.merchant_events import record_payment_events
from gateway.application.pending_sweep import SweepDeps, sweep_pending_payments
from gateway.application.ports import (
    BankCallbackRecord,
    CommitConflict,
    IdempotencyRecord,
    KeyLocks,
    PendingPayment,
)
from gateway.application.queries import (
    GetJob,
    GetPayment,
    JobView,
    ListPayments,
    PaymentFilter,
    PaymentPage,
    PaymentView,
    get_job,
    get_payment,
    list_payments,
)
from gateway.domain.commands import (
    AbandonPayment,
    DeliverWebhook,
    MakePayment,
    ReceiveBankCallback,
    RequestPayment,
    SweepPendingPayments,
)
from gateway.domain.events import Event
from gateway.domain.merchant import ApiKey, Merchant
from gateway.domain.model import Job, Payment
from tests.unit.webhook_fakes import (
    FakeDeliveries,
    FakeMerchantEvents,
    FakeWebhookEndpoints,
    WebhookStore,
)

VAULT_KEY = bytes(range(32))
FINGERPRINT_KEY = bytes(range(32, 64))
BANK_SECRET = "bank-secret-for-tests"


async def _yield() -> None:
    """Lets other tasks run, as a real database round trip would."""
    await asyncio.sleep(0)


@dataclass
class FakeStore:
    """What has been committed. Tests read it to see what a handler wrote."""

    payments: dict[str, Payment] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    cards: dict[str, bytes] = field(default_factory=dict)
    outbox: list[MakePayment | DeliverWebhook] = field(default_factory=list)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    merchants: dict[str, Merchant] = field(default_factory=dict)
    keys: dict[str, ApiKey] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    pending_payments: dict[str, PendingPayment] = field(default_factory=dict)
    bank_callbacks: dict[str, BankCallbackRecord] = field(default_factory=dict)
    commits: int = 0
    row_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    webhooks: WebhookStore = field(default_factory=WebhookStore)


def _copy_payment(payment: Payment) -> Payment:
    return dataclasses.replace(payment, events=[])


class _Staged:
    """Writes of one unit of work, applied together on commit."""

    def __init__(self) -> None:
        self.payments: dict[str, Payment] = {}
        self.jobs: dict[str, Job] = {}
        self.cards: dict[str, bytes] = {}
        self.deleted_cards: set[str] = set()
        self.outbox: list[MakePayment | DeliverWebhook] = []
        self.idempotency: list[IdempotencyRecord] = []
        self.merchants: dict[str, Merchant] = {}
        self.keys: dict[str, ApiKey] = {}
        self.locks: list[asyncio.Lock] = []  # rows read `for_update`, held until the end
        self.webhooks = WebhookStore()
        self.pending_payments: dict[str, PendingPayment | None] = {}  # None: deleted
        self.bank_callbacks: list[BankCallbackRecord] = []

    def release(self) -> None:
        for lock in self.locks:
            lock.release()


class FakePayments:
    def __init__(self, store: FakeStore, staged: _Staged) -> None:
        self._store, self._staged = store, staged

    def add(self, payment: Payment) -> None:
        self._staged.payments[payment.id] = payment

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None:
        await _yield()
        if for_update:  # like SELECT … FOR UPDATE: wait for the row's current writer
            lock = self._store.row_locks.setdefault(payment_id, asyncio.Lock())
            if lock not in self._staged.locks:
                await lock.acquire()
                self._staged.locks.append(lock)
        found = self._staged.payments.get(payment_id) or self._store.payments.get(payment_id)
        return _copy_payment(found) if found else None

    async def save(self, payment: Payment) -> None:
        self._staged.payments[payment.id] = payment


class FakeJobs:
    def __init__(self, store: FakeStore, staged: _Staged) -> None:
        self._store, self._staged = store, staged

    def add(self, job: Job) -> None:
        self._staged.jobs[job.id] = job

    async def get(self, job_id: str) -> Job | None:
        await _yield()
        found = self._staged.jobs.get(job_id) or self._store.jobs.get(job_id)
        return dataclasses.replace(found) if found else None

    async def for_payment(self, payment_id: str) -> Job | None:
        await _yield()
        jobs = {**self._store.jobs, **self._staged.jobs}.values()
        found = next((job for job in jobs if job.payment_id == payment_id), None)
        return dataclasses.replace(found) if found else None

    async def save(self, job: Job) -> None:
        self._staged.jobs[job.id] = job


class FakeCards:
    def __init__(self, store: FakeStore, staged: _Staged) -> None:
        self._store, self._staged = store, staged

    def add(self, payment_id: str, sealed: bytes) -> None:
        self._staged.deleted_cards.discard(payment_id)
        self._staged.cards[payment_id] = sealed

    async def get(self, payment_id: str) -> bytes | None:
        await _yield()
        if payment_id in self._staged.deleted_cards:
            return None
        if payment_id in self._staged.cards:
            return self._staged.cards[payment_id]
        return self._store.cards.get(payment_id)

    async def delete(self, payment_id: str) -> None:
        self._staged.cards.pop(payment_id, None)
        self._staged.deleted_cards.add(payment_id)


class FakeOutbox:
    def __init__(self, staged: _Staged) -> None:
        self._staged = staged

    def add(self, command: MakePayment | DeliverWebhook) -> None:
        self._staged.outbox.append(command)


class FakeIdempotency:
    def __init__(self, store: FakeStore, staged: _Staged) -> None:
        self._store, self._staged = store, staged

    async def get(self, merchant_id: str, key: str) -> IdempotencyRecord | None:
        await _yield()
        return self._store.idempotency.get((merchant_id, key))

    def add(self, record: IdempotencyRecord) -> None:
        self._staged.idempotency.append(record)


class FakeMerchants:
    def __init__(self, store: FakeStore, staged: _Staged) -> None:
        self._store, self._staged = store, staged

    def add(self, merchant: Merchant) -> None:
        self._staged.merchants[merchant.id] = merchant

    async def get(self, merchant_id: str) -> Merchant | None:
        return self._staged.merchants.get(merchant_id) or self._store.merchants.get(merchant_id)

    async def any(self) -> bool:
        return bool(self._store.merchants or self._staged.merchants)

    def add_key(self, key: ApiKey) -> None:
        self._staged.keys[key.id] = key

    async def find_key(self, prefix: str) -> ApiKey | None:
        keys = {**self._store.keys, **self._staged.keys}.values()
        return next((key for key in keys if key.prefix == prefix), None)

    async def revoke_key(self, key_id: str, now: datetime) -> bool:
        key = self._staged.keys.get(key_id) or self._store.keys.get(key_id)
        if key is None or not key.active:
            return False
        self._staged.keys[key_id] = dataclasses.replace(key, revoked_at=now)
        return True

    async def list_keys(self, merchant_id: str) -> Sequence[ApiKey]:
        keys = {**self._store.keys, **self._staged.keys}.values()
        return [key for key in keys if key.merchant_id == merchant_id]


class FakePendingPayments:
    def __init__(self, store: FakeStore, staged: _Staged) -> None:
        self._store, self._staged = store, staged

    def add(self, pending: PendingPayment) -> None:
        self._staged.pending_payments[pending.payment_id] = pending

    async def get(self, payment_id: str) -> PendingPayment | None:
        await _yield()
        if payment_id in self._staged.pending_payments:
            return self._staged.pending_payments[payment_id]
        return self._store.pending_payments.get(payment_id)

    async def reschedule(self, payment_id: str, next_lookup_at: datetime, lookups: int) -> None:
        found = await self.get(payment_id)
        if found is not None:
            changed = dataclasses.replace(found, next_lookup_at=next_lookup_at, lookups=lookups)
            self._staged.pending_payments[payment_id] = changed

    async def delete(self, payment_id: str) -> None:
        self._staged.pending_payments[payment_id] = None

    async def claim_due(
        self, now: datetime, limit: int, lease_until: datetime
    ) -> Sequence[PendingPayment]:
        due = sorted(
            (row for row in self._store.pending_payments.values() if row.next_lookup_at <= now),
            key=lambda row: row.next_lookup_at,
        )[:limit]
        for row in due:
            leased = dataclasses.replace(row, next_lookup_at=lease_until)
            self._staged.pending_payments[row.payment_id] = leased
        return due


class FakeBankCallbacks:
    def __init__(self, store: FakeStore, staged: _Staged) -> None:
        self._store, self._staged = store, staged

    async def get(self, event_id: str) -> BankCallbackRecord | None:
        await _yield()
        return self._store.bank_callbacks.get(event_id)

    def add(self, record: BankCallbackRecord) -> None:
        self._staged.bank_callbacks.append(record)


class FakeUnitOfWork:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self._staged = _Staged()
        self.committed = False

    @property
    def payments(self) -> FakePayments:
        return FakePayments(self.store, self._staged)

    @property
    def jobs(self) -> FakeJobs:
        return FakeJobs(self.store, self._staged)

    @property
    def cards(self) -> FakeCards:
        return FakeCards(self.store, self._staged)

    @property
    def outbox(self) -> FakeOutbox:
        return FakeOutbox(self._staged)

    @property
    def idempotency(self) -> FakeIdempotency:
        return FakeIdempotency(self.store, self._staged)

    @property
    def merchants(self) -> FakeMerchants:
        return FakeMerchants(self.store, self._staged)

    @property
    def pending_payments(self) -> FakePendingPayments:
        return FakePendingPayments(self.store, self._staged)

    @property
    def bank_callbacks(self) -> FakeBankCallbacks:
        return FakeBankCallbacks(self.store, self._staged)

    @property
    def webhook_endpoints(self) -> FakeWebhookEndpoints:
        return FakeWebhookEndpoints(self.store.webhooks, self._staged.webhooks)

    @property
    def events(self) -> FakeMerchantEvents:
        return FakeMerchantEvents(self.store.webhooks, self._staged.webhooks)

    @property
    def deliveries(self) -> FakeDeliveries:
        return FakeDeliveries(self.store.webhooks, self._staged.webhooks)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._reset()  # roll back whatever was not committed

    def _reset(self) -> None:
        self._staged.release()
        self._staged = _Staged()

    async def commit(self) -> None:
        await _yield()
        staged, store = self._staged, self.store
        keys = [(record.merchant_id, record.key) for record in staged.idempotency]
        if len(set(keys)) != len(keys) or any(key in store.idempotency for key in keys):
            self._reset()
            raise CommitConflict("idempotency key already recorded")
        if any(record.event_id in store.bank_callbacks for record in staged.bank_callbacks):
            self._reset()
            raise CommitConflict("bank event already recorded")
        for payment in staged.payments.values():
            store.events.extend(payment.events)
            await record_payment_events(self, payment, store.webhooks.ids)  # in this commit
            store.payments[payment.id] = _copy_payment(payment)
        store.webhooks.apply(staged.webhooks)
        store.jobs.update({job.id: dataclasses.replace(job) for job in staged.jobs.values()})
        store.cards.update(staged.cards)
        for payment_id in staged.deleted_cards:
            store.cards.pop(payment_id, None)
        store.outbox.extend(staged.outbox)
        store.idempotency.update(dict(zip(keys, staged.idempotency, strict=True)))
        store.merchants.update(staged.merchants)
        store.keys.update(staged.keys)
        for payment_id, pending in staged.pending_payments.items():
            if pending is None:
                store.pending_payments.pop(payment_id, None)
            else:
                store.pending_payments[payment_id] = pending
        store.bank_callbacks.update({record.event_id: record for record in staged.bank_callbacks})
        store.commits += 1
        self._reset()
        self.committed = True


class FakeBank:
    """Answers `authorize` from a script per card number (else `default`); logs calls."""

    def __init__(
        self,
        default: BankOutcome | None = None,
        *,
        by_card: dict[str, BankOutcome] | None = None,
        lookup: BankOutcome | None = None,
    ) -> None:
        self.default = default or Authorized("A1B2C3")
        self.by_card = dict(by_card or {})
        self.lookup_outcome = lookup or Unknown()
        self.calls: list[BankRequest] = []
        self.lookups: list[str] = []

    async def authorize(self, request: BankRequest) -> BankOutcome:
        self.calls.append(request)
        await _yield()
        return self.by_card.get(request.card_number, self.default)

    async def lookup(self, idempotency_key: str) -> BankOutcome:
        self.lookups.append(idempotency_key)
        await _yield()
        return self.lookup_outcome


class FixedClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 11, 23, 18, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class SequentialIds:
    """`pay_000…001`, `job_000…002`, …: unique and in creation order."""

    def __init__(self) -> None:
        self.count = 0

    def new(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count:026d}"


class NoLocks:
    """Every name is free: how two gateway processes see one idempotency key."""

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[bool]:
        yield True


class FakeViews:
    """Answers queries from fixed views and remembers the filters it was asked for."""

    def __init__(
        self, jobs: Sequence[JobView] = (), payments: Sequence[tuple[str, PaymentView]] = ()
    ) -> None:
        self.jobs = list(jobs)
        self.owned = list(payments)
        self.filters: list[PaymentFilter] = []

    async def job(self, merchant_id: str, job_id: str) -> JobView | None:
        return next((view for view in self.jobs if view.id == job_id), None)

    async def payment(self, merchant_id: str, payment_id: str) -> PaymentView | None:
        found = (v for owner, v in self.owned if owner == merchant_id and v.id == payment_id)
        return next(found, None)

    async def payments(self, merchant_id: str, page: PaymentFilter) -> PaymentPage:
        self.filters.append(page)
        mine = [view for owner, view in self.owned if owner == merchant_id]
        return PaymentPage(data=mine[: page.limit], has_more=len(mine) > page.limit)


@dataclass
class Gateway:
    """The application wired with fakes, driven through the real `Mediator`."""

    store: FakeStore = field(default_factory=FakeStore)
    bank: FakeBank = field(default_factory=FakeBank)
    clock: FixedClock = field(default_factory=FixedClock)
    ids: SequentialIds = field(default_factory=SequentialIds)
    locks: KeyLocks = field(default_factory=InProcessKeyLocks)
    views: FakeViews = field(default_factory=FakeViews)
    vault: AesGcmCardVault = field(default_factory=lambda: AesGcmCardVault(VAULT_KEY))
    behaviours: Sequence[Behaviour] = ()
    uows: list[FakeUnitOfWork] = field(default_factory=list)
    bank_secrets: tuple[str, ...] = (BANK_SECRET,)
    pending_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        fingerprints = HmacFingerprinter(FINGERPRINT_KEY)
        request = RequestPaymentDeps(self.clock, self.ids, self.vault, fingerprints, self.locks)
        make = MakePaymentDeps(self.clock, self.vault, self.bank, self.pending_timeout_s)
        callbacks = BankCallbackDeps(self.clock, self.bank_secrets)
        sweep = SweepDeps(self.clock, self.bank, self.pending_timeout_s)
        abandon = AbandonPaymentDeps(self.clock, self.bank, self.pending_timeout_s)
        self.mediator = Mediator(
            commands={
                RequestPayment: functools.partial(request_payment, deps=request),
                MakePayment: functools.partial(make_payment, deps=make),
                ReceiveBankCallback: functools.partial(receive_bank_callback, deps=callbacks),
                SweepPendingPayments: functools.partial(sweep_pending_payments, deps=sweep),
                AbandonPayment: functools.partial(abandon_payment, deps=abandon),
            },
            queries={
                GetJob: functools.partial(get_job, views=self.views),
                GetPayment: functools.partial(get_payment, views=self.views),
                ListPayments: functools.partial(list_payments, views=self.views),
            },
            uow_factory=self._new_uow,
            behaviours=self.behaviours,
        )

    def _new_uow(self) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.store)
        self.uows.append(uow)
        return uow


def valid_body(**overrides: object) -> dict[str, object]:
    """A request body that passes validation at the default `FixedClock` time."""
    card: dict[str, object] = {
        "number": "4242424242424242",
        "expiry_month": 12,
        "expiry_year": 2030,
        "cvv": "123",
        "holder_name": "Jane Doe",
    }
    body: dict[str, object] = {
        "amount": 1050,
        "currency": "GBP",
        "card": card,
        "reference": "ORD-001",
        "metadata": {"customer": "c_42"},
    }
    card.update({k[5:]: v for k, v in overrides.items() if k.startswith("card_")})
    body.update({k: v for k, v in overrides.items() if not k.startswith("card_")})
    return body
