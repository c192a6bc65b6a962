"""The composition root: the only module that knows which adapter serves which port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

import httpx
from dependency_injector import containers, providers
from litestar import Litestar

from gateway.adapters import bank_http, observability
from gateway.adapters.bank_simulator import create_simulator_app
from gateway.adapters.clock import SystemClock
from gateway.adapters.crypto import AesGcmCardVault, HmacFingerprinter, derive_keys
from gateway.adapters.database import create_engine, ping
from gateway.adapters.ids import TimeOrderedIds
from gateway.adapters.in_process import InProcessPublisher
from gateway.adapters.locks import InProcessKeyLocks
from gateway.adapters.migrations import is_current, migrate
from gateway.adapters.outbox import SqlOutboxStore
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.adapters.views import SqlViews
from gateway.application import handlers, merchants, queries
from gateway.application.authentication import ApiKeyAuthenticator
from gateway.application.mediator import Mediator
from gateway.application.ports import Clock, UnitOfWorkFactory
from gateway.application.relay import Relay
from gateway.config import Settings, read_card_key
from gateway.domain.commands import (
    CreateApiKey,
    CreateMerchant,
    MakePayment,
    RequestPayment,
    RevokeApiKey,
)


def _write_lock(settings: Settings) -> asyncio.Lock | None:
    """SQLite takes one writer at a time: the coroutines of a process queue up for it."""
    return asyncio.Lock() if settings.is_sqlite else None


def _bank_client(settings: Settings) -> httpx.AsyncClient:
    if settings.bank_url is not None:
        return bank_http.http_client(settings.bank_url, settings.bank_timeout_s)
    return bank_http.in_process_client(bank_simulator_app(settings))


def _mediator(
    uow_factory: UnitOfWorkFactory,
    views: SqlViews,
    request_deps: handlers.RequestPaymentDeps,
    make_deps: handlers.MakePaymentDeps,
    merchant_deps: merchants.MerchantDeps,
) -> Mediator:
    return Mediator(
        commands={
            RequestPayment: partial(handlers.request_payment, deps=request_deps),
            MakePayment: partial(handlers.make_payment, deps=make_deps),
            CreateMerchant: partial(merchants.create_merchant, deps=merchant_deps),
            CreateApiKey: partial(merchants.create_api_key, deps=merchant_deps),
            RevokeApiKey: partial(merchants.revoke_api_key, deps=merchant_deps),
        },
        queries={
            queries.GetJob: partial(queries.get_job, views=views),
            queries.GetPayment: partial(queries.get_payment, views=views),
            queries.ListPayments: partial(queries.list_payments, views=views),
            merchants.ListApiKeys: partial(merchants.list_api_keys, uow_factory=uow_factory),
        },
        uow_factory=uow_factory,
        behaviours=(observability.logging, observability.timing),
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    engine = providers.Singleton(create_engine, settings.provided.database_url)
    write_lock = providers.Singleton(_write_lock, settings)
    clock: providers.Provider[Clock] = providers.Singleton(SystemClock)
    ids = providers.Singleton(TimeOrderedIds)
    locks = providers.Singleton(InProcessKeyLocks)
    keys = providers.Singleton(
        derive_keys, providers.Callable(read_card_key, settings, create=False)
    )
    vault = providers.Singleton(AesGcmCardVault, keys.provided.vault)
    fingerprinter = providers.Singleton(HmacFingerprinter, keys.provided.fingerprint)

    uow = providers.Factory(SqlUnitOfWork, engine, write_lock)
    views = providers.Singleton(SqlViews, engine)
    outbox_store = providers.Singleton(SqlOutboxStore, engine, write_lock)

    bank_client = providers.Singleton(_bank_client, settings)
    bank = providers.Singleton(
        bank_http.HttpBank,
        bank_client,
        timeout_s=settings.provided.bank_timeout_s,
        attempts=settings.provided.bank_attempts,
        observe=observability.observe_bank_call,
    )

    mediator = providers.Singleton(
        _mediator,
        uow.provider,
        views,
        providers.Factory(handlers.RequestPaymentDeps, clock, ids, vault, fingerprinter, locks),
        providers.Factory(handlers.MakePaymentDeps, clock, vault, bank),
        providers.Factory(merchants.MerchantDeps, clock, ids),
    )
    authenticator = providers.Singleton(
        ApiKeyAuthenticator, uow.provider, settings.provided.api_key_cache_s
    )


def build(settings: Settings) -> Container:
    return Container(settings=settings)


def in_process_relay(container: Container) -> Relay:
    """Embedded delivery: outbox rows go straight to the `MakePayment` handler."""
    mediator = container.mediator()
    publisher = InProcessPublisher(mediator.send, container.settings().worker_concurrency)
    return Relay(container.outbox_store(), publisher, idle_s=0.05)


async def database_ready(container: Container) -> bool:
    return await ping(container.engine())


async def migrate_database(container: Container) -> None:
    await migrate(container.engine())


async def schema_is_current(container: Container) -> bool:
    return await is_current(container.engine())


async def lifespan(container: Container) -> AsyncIterator[None]:
    """Opened once per process: closes the bank client and the database pool on exit."""
    try:
        yield
    finally:
        await container.bank_client().aclose()
        await container.engine().dispose()


def bank_simulator_app(settings: Settings) -> Litestar:
    """The bank simulator as its own service (`gateway bank-simulator`)."""
    return create_simulator_app(
        latency_ms=settings.bank_latency_ms,
        webhook_url=settings.bank_webhook_url,
        webhook_secret=settings.bank_webhook_secret,
    )


async def has_merchants(container: Container) -> bool:
    async with container.uow() as uow:
        return await uow.merchants.any()
