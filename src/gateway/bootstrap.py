"""The composition root: the only module that knows which adapter serves which port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from functools import partial

import httpx
from dependency_injector import containers, providers
from litestar import Litestar

from gateway.adapters import bank_http, observability
from gateway.adapters.bank_simulator import create_simulator_app
from gateway.adapters.bank_simulator_ledger import EXAMPLE_CARD
from gateway.adapters.clock import SystemClock
from gateway.adapters.crypto import AesGcmCardVault, HmacFingerprinter, derive_keys
from gateway.adapters.database import create_engine, ping
from gateway.adapters.ids import TimeOrderedIds
from gateway.adapters.in_process import InProcessPublisher
from gateway.adapters.locks import InProcessKeyLocks
from gateway.adapters.migrations import is_current, migrate
from gateway.adapters.outbox import SqlOutboxStore
from gateway.adapters.rabbitmq import RabbitBroker
from gateway.adapters.rabbitmq_consumer import Consumer
from gateway.adapters.rabbitmq_deliveries import DeadLetters, PaymentDeliveries
from gateway.adapters.rabbitmq_topology import Topology
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.adapters.views import SqlViews
from gateway.application import dead_letters, handlers, merchants, queries
from gateway.application.authentication import ApiKeyAuthenticator
from gateway.application.mediator import Mediator
from gateway.application.ports import Clock, UnitOfWorkFactory
from gateway.application.relay import Relay
from gateway.config import PREFIX, ConfigError, Settings, read_card_key
from gateway.domain.commands import (
    AbandonPayment,
    CreateApiKey,
    CreateMerchant,
    MakePayment,
    RequestPayment,
    RevokeApiKey,
)


def _write_lock(settings: Settings) -> asyncio.Lock | None:
    """SQLite takes one writer at a time: the coroutines of a process queue up for it."""
    return asyncio.Lock() if settings.is_sqlite else None


def _bank_client(settings: Settings, simulator: providers.Provider[Litestar]) -> httpx.AsyncClient:
    if settings.bank_url is not None:
        return bank_http.http_client(settings.bank_url, settings.bank_timeout_s)
    return bank_http.in_process_client(simulator())


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
            AbandonPayment: partial(
                dead_letters.abandon_payment,
                deps=dead_letters.AbandonPaymentDeps(make_deps.clock),
            ),
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


def _broker(settings: Settings) -> RabbitBroker | None:
    if settings.broker_url is None:
        return None
    return RabbitBroker(settings.broker_url, Topology(settings.queue_prefix))


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

    bank_simulator = providers.Singleton(lambda settings: bank_simulator_app(settings), settings)
    bank_client = providers.Singleton(_bank_client, settings, bank_simulator.provider)
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
    broker = providers.Singleton(_broker, settings)
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
    """Opened once per process: runs the in-process bank simulator (its webhooks are
    background tasks) and closes the bank client and the database pool on exit."""
    try:
        if container.settings().bank_url is None:
            async with container.bank_simulator().lifespan():
                yield
        else:
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


def example_card() -> str:
    """A test card the bank simulator authorizes, for the `gateway dev` welcome text."""
    return EXAMPLE_CARD


async def has_merchants(container: Container) -> bool:
    async with container.uow() as uow:
        return await uow.merchants.any()


# --- broker wiring: RabbitMQ for `gateway relay`, `gateway worker` and API readiness


def _require_broker(container: Container) -> RabbitBroker:
    broker: RabbitBroker | None = container.broker()
    if broker is None:
        raise ConfigError(f"{PREFIX}BROKER_URL must be set (amqp://…) for the relay and worker")
    return broker


async def connect_broker(container: Container) -> None:
    """Connects and declares the topology; while the broker is down, keeps trying."""
    await _require_broker(container).connect()


def broker_relay(container: Container, on_error: Callable[[Exception, float], None]) -> Relay:
    """The outbox relay publishing to RabbitMQ; `on_error(error, backoff_s)` on failures."""
    publisher = _require_broker(container).publisher(observability.OUTBOX_PUBLISHED.inc)
    return Relay(container.outbox_store(), publisher, on_error=on_error)


async def refresh_outbox_gauges(container: Container) -> None:
    count, oldest_age_s = await container.outbox_store().backlog()
    observability.OUTBOX_BACKLOG.set(count)
    observability.OUTBOX_OLDEST.set(oldest_age_s)


class Consumers:
    """The worker's consumers: `MakePayment` and its dead letters."""

    def __init__(self, *consumers: Consumer) -> None:
        self._consumers = consumers

    async def stop(self, grace_s: float) -> None:
        """Stops consuming, lets in-flight messages finish for up to `grace_s`, returns
        the rest to the queue."""
        await asyncio.gather(*(consumer.stop(grace_s) for consumer in self._consumers))


async def start_consuming(container: Container) -> Consumers:
    broker = _require_broker(container)
    send = container.mediator().send
    healthy = partial(database_ready, container)
    prefetch = container.settings().worker_concurrency
    payments = await broker.consume_payments(PaymentDeliveries(send, healthy=healthy), prefetch)
    dead = await broker.consume_dead_letters(DeadLetters(send, healthy=healthy))
    return Consumers(payments, dead)


async def refresh_dead_letter_gauge(container: Container) -> None:
    observability.DLQ_DEPTH.set(await _require_broker(container).dead_letter_depth())


async def broker_ready(container: Container) -> bool:
    """True without a broker configured; else whether the connection is up (the first
    call connects)."""
    broker: RabbitBroker | None = container.broker()
    if broker is None:
        return True
    if not broker.is_connected:
        try:
            async with asyncio.timeout(3):
                await broker.connect(retry=False)
        except Exception:  # refused, timed out, bad credentials: not ready
            return False
    return broker.is_connected


async def close_broker(container: Container) -> None:
    broker: RabbitBroker | None = container.broker()
    if broker is not None:
        await broker.close()
