"""The composition root: the only module that knows which adapter serves which port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from typing import Any

import structlog
from dependency_injector import containers, providers
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters import bank_http, observability
from gateway.adapters.bank_simulator import create_simulator_app
from gateway.adapters.bank_simulator_ledger import EXAMPLE_CARD
from gateway.adapters.clock import SystemClock
from gateway.adapters.crypto import (
    AesGcmCardVault,
    AesGcmSecretBox,
    HmacFingerprinter,
    derive_keys,
)
from gateway.adapters.database import create_engine, ping
from gateway.adapters.ids import TimeOrderedIds
from gateway.adapters.in_process import InProcessPublisher
from gateway.adapters.locks import InProcessKeyLocks
from gateway.adapters.migrations import is_current, migrate
from gateway.adapters.outbox import SqlOutboxStore
from gateway.adapters.postgres_direct import DirectPool
from gateway.adapters.postgres_intake import PostgresIntake
from gateway.adapters.postgres_processing import PostgresProcessing
from gateway.adapters.rabbitmq import RabbitBroker
from gateway.adapters.rabbitmq_consumer import Consumer
from gateway.adapters.rabbitmq_deliveries import DeadLetters, PaymentDeliveries
from gateway.adapters.rabbitmq_topology import Topology
from gateway.adapters.rabbitmq_webhooks import NoRetries, RabbitRetries, WebhookMessages
from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.adapters.views import SqlViews
from gateway.adapters.webhook_sender import DnsResolver, HttpWebhookSender
from gateway.adapters.webhook_sender import http_client as webhook_http_client
from gateway.adapters.webhook_views import SqlDueDeliveries, SqlWebhookViews
from gateway.application import (
    bank_callbacks,
    dead_letters,
    handlers,
    merchants,
    pending_sweep,
    queries,
    webhook_delivery,
    webhook_endpoints,
)
from gateway.application import webhook_queries as wq
from gateway.application.authentication import ApiKeyAuthenticator
from gateway.application.intake import TransactionalIntake
from gateway.application.mediator import CommandHandler, Mediator, QueryHandler
from gateway.application.ports import Clock, PaymentIntake, PaymentProcessing, UnitOfWorkFactory
from gateway.application.processing import TransactionalProcessing
from gateway.application.rate_limit import RequestLimits
from gateway.application.relay import Relay
from gateway.application.webhook_dispatcher import WebhookDispatcher
from gateway.config import PREFIX, ConfigError, Settings, bank_webhook_url, read_card_key
from gateway.domain.commands import (
    AbandonPayment,
    CreateApiKey,
    CreateMerchant,
    CreateWebhookEndpoint,
    DeleteWebhookEndpoint,
    DeliverWebhook,
    MakePayment,
    ReceiveBankCallback,
    RedeliverEvent,
    RequestPayment,
    RevokeApiKey,
    RotateWebhookSecret,
    SweepPendingPayments,
)
from gateway.domain.retry_schedule import RetrySchedule

_log = structlog.get_logger("gateway.webhooks")


def _write_lock(settings: Settings) -> asyncio.Lock | None:
    """SQLite takes one writer at a time: the coroutines of a process queue up for it."""
    return asyncio.Lock() if settings.is_sqlite else None


def _intake(engine: AsyncEngine, pool: DirectPool) -> PaymentIntake:
    """PostgreSQL accepts the payments that come together in one statement; SQLite through
    the unit of work."""
    if engine.dialect.name == "postgresql":
        return PostgresIntake(pool, observe_batch=observability.observe_accept_batch)
    return TransactionalIntake()


def _processing(engine: AsyncEngine, pool: DirectPool) -> PaymentProcessing:
    """PostgreSQL reads and settles the payments in flight in a statement each; SQLite
    through the unit of work."""
    if engine.dialect.name == "postgresql":
        return PostgresProcessing(pool, observe_batch=observability.observe_batch)
    return TransactionalProcessing()


def _bank_client(settings: Settings, simulator: providers.Provider[Litestar]) -> bank_http.BankWire:
    if settings.bank_url is not None:
        return bank_http.network_wire(settings.bank_url, settings.bank_timeout_s)
    return bank_http.in_process_wire(simulator())


def _mediator(
    uow_factory: UnitOfWorkFactory,
    views: SqlViews,
    request_deps: handlers.RequestPaymentDeps,
    make_deps: handlers.MakePaymentDeps,
    merchant_deps: merchants.MerchantDeps,
    callback_deps: bank_callbacks.BankCallbackDeps,
    sweep_deps: pending_sweep.SweepDeps,
    webhook_commands: Mapping[type[Any], CommandHandler],
    webhook_queries: Mapping[type[Any], QueryHandler],
) -> Mediator:
    return Mediator(
        commands={
            RequestPayment: partial(handlers.request_payment, deps=request_deps),
            MakePayment: partial(handlers.make_payment, deps=make_deps),
            AbandonPayment: partial(
                dead_letters.abandon_payment,
                deps=dead_letters.AbandonPaymentDeps(
                    make_deps.clock, make_deps.bank, make_deps.pending_timeout_s
                ),
            ),
            CreateMerchant: partial(merchants.create_merchant, deps=merchant_deps),
            CreateApiKey: partial(merchants.create_api_key, deps=merchant_deps),
            RevokeApiKey: partial(merchants.revoke_api_key, deps=merchant_deps),
            ReceiveBankCallback: partial(bank_callbacks.receive_bank_callback, deps=callback_deps),
            SweepPendingPayments: partial(pending_sweep.sweep_pending_payments, deps=sweep_deps),
            **webhook_commands,
        },
        queries={
            queries.GetJob: partial(queries.get_job, views=views),
            queries.GetPayment: partial(queries.get_payment, views=views),
            queries.ListPayments: partial(queries.list_payments, views=views),
            merchants.ListApiKeys: partial(merchants.list_api_keys, uow_factory=uow_factory),
            **webhook_queries,
        },
        uow_factory=uow_factory,
        behaviours=(observability.logging, observability.timing),
    )


def _broker(settings: Settings) -> RabbitBroker | None:
    if settings.broker_url is None:
        return None
    return RabbitBroker(settings.broker_url, Topology(settings.queue_prefix))


def _webhook_commands(
    endpoint_deps: webhook_endpoints.WebhookEndpointDeps,
    deliver_deps: webhook_delivery.DeliverWebhookDeps,
) -> dict[type[Any], CommandHandler]:
    return {
        CreateWebhookEndpoint: partial(webhook_endpoints.create_endpoint, deps=endpoint_deps),
        DeleteWebhookEndpoint: partial(webhook_endpoints.delete_endpoint, deps=endpoint_deps),
        RotateWebhookSecret: partial(webhook_endpoints.rotate_secret, deps=endpoint_deps),
        RedeliverEvent: partial(webhook_endpoints.redeliver_event, deps=endpoint_deps),
        DeliverWebhook: partial(webhook_delivery.deliver_webhook, deps=deliver_deps),
    }


def _webhook_queries(views: SqlWebhookViews) -> dict[type[Any], QueryHandler]:
    return {
        wq.GetWebhookEndpoint: partial(wq.get_endpoint, views=views),
        wq.ListWebhookEndpoints: partial(wq.list_endpoints, views=views),
        wq.GetEvent: partial(wq.get_event, views=views),
        wq.ListEvents: partial(wq.list_events, views=views),
        wq.ListDeliveryAttempts: partial(wq.list_attempts, views=views),
    }


def _webhook_retries(broker: RabbitBroker | None) -> RabbitRetries | NoRetries:
    """Through the broker's delay queues, or (embedded) left to the dispatcher's sweep."""
    return NoRetries() if broker is None else RabbitRetries(broker)


def _embedded_dispatcher(
    due: SqlDueDeliveries, mediator: Mediator, clock: Clock
) -> WebhookDispatcher:
    return WebhookDispatcher(due, mediator.send, clock, on_error=_log_webhook_error)


def _log_webhook_error(error: Exception) -> None:
    _log.warning("webhook_dispatch_failed", error=type(error).__name__)


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    # The process on PostgreSQL's side: `pg_stat_activity.application_name`.
    application_name = providers.Dependency(instance_of=str, default="gateway")

    engine = providers.Singleton(
        create_engine, settings.provided.database_url, application_name=application_name
    )
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
    # What the mediator calls for every command: a plain partial, resolved once (the
    # Factory provider resolved its arguments' providers again on every call).
    uow_factory = providers.Singleton(partial, SqlUnitOfWork, engine, write_lock)
    views = providers.Singleton(SqlViews, engine)
    outbox_store = providers.Singleton(SqlOutboxStore, engine, write_lock)
    direct_pool = providers.Singleton(DirectPool, engine)
    intake = providers.Singleton(_intake, engine, direct_pool)
    processing = providers.Singleton(_processing, engine, direct_pool)

    bank_simulator = providers.Singleton(lambda settings: bank_simulator_app(settings), settings)
    bank_client = providers.Singleton(_bank_client, settings, bank_simulator.provider)
    bank = providers.Singleton(
        bank_http.HttpBank,
        bank_client,
        timeout_s=settings.provided.bank_timeout_s,
        attempts=settings.provided.bank_attempts,
        observe=observability.observe_bank_call,
    )

    broker = providers.Singleton(_broker, settings)

    secret_box = providers.Singleton(AesGcmSecretBox, keys.provided.webhook_secrets)
    resolver = providers.Singleton(DnsResolver)
    webhook_client = providers.Singleton(
        webhook_http_client, resolver, allow_internal=settings.provided.webhook_allow_internal
    )
    webhook_views = providers.Singleton(SqlWebhookViews, engine)
    webhook_commands = providers.Singleton(
        _webhook_commands,
        providers.Factory(
            webhook_endpoints.WebhookEndpointDeps,
            clock,
            ids,
            secret_box,
            resolver,
            allow_internal=settings.provided.webhook_allow_internal,
        ),
        providers.Factory(
            webhook_delivery.DeliverWebhookDeps,
            clock,
            ids,
            secret_box,
            providers.Singleton(HttpWebhookSender, webhook_client),
            providers.Singleton(_webhook_retries, broker),
            providers.Callable(RetrySchedule.of, settings.provided.webhook_retry_schedule),
        ),
    )
    webhook_queries = providers.Singleton(_webhook_queries, webhook_views)

    mediator = providers.Singleton(
        _mediator,
        uow_factory,
        views,
        providers.Factory(
            handlers.RequestPaymentDeps, clock, ids, vault, fingerprinter, locks, intake
        ),
        providers.Factory(
            handlers.MakePaymentDeps,
            clock,
            vault,
            bank,
            pending_timeout_s=settings.provided.bank_pending_timeout_s,
            processing=processing,
        ),
        providers.Factory(merchants.MerchantDeps, clock, ids),
        providers.Factory(
            bank_callbacks.BankCallbackDeps,
            clock,
            settings.provided.bank_webhook_secrets,
            tolerance_s=settings.provided.webhook_tolerance_s,
        ),
        providers.Factory(
            pending_sweep.SweepDeps,
            clock,
            bank,
            pending_timeout_s=settings.provided.bank_pending_timeout_s,
        ),
        webhook_commands,
        webhook_queries,
    )
    webhook_dispatcher = providers.Singleton(
        _embedded_dispatcher, providers.Singleton(SqlDueDeliveries, engine), mediator, clock
    )
    authenticator = providers.Singleton(
        ApiKeyAuthenticator, uow_factory, settings.provided.api_key_cache_s
    )
    request_limits = providers.Singleton(
        RequestLimits.of,
        settings.provided.rate_limit_per_s,
        settings.provided.rate_limit_burst,
        settings.provided.auth_failure_limit,
    )


def build(settings: Settings, process: str | None = None) -> Container:
    """`process` (`api`, `worker`…) names its connections `gateway-<process>`."""
    name = "gateway" if process is None else f"gateway-{process}"
    return Container(settings=settings, application_name=name)


def in_process_relay(container: Container) -> Relay:
    """Embedded delivery: outbox rows go straight to the `MakePayment` handler."""
    mediator = container.mediator()
    publisher = InProcessPublisher(
        mediator.send,
        container.settings().worker_concurrency,
        webhooks=container.webhook_dispatcher().submit,
    )
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
        await container.webhook_client().aclose()
        await container.direct_pool().close()
        await container.engine().dispose()


def bank_simulator_app(settings: Settings) -> Litestar:
    """The bank simulator, as its own service (`gateway bank-simulator`) or in process.
    It signs its callbacks with the current bank secret; without one it sends none."""
    url = bank_webhook_url(settings)
    return create_simulator_app(
        latency_ms=settings.bank_latency_ms,
        webhook_url=url,
        webhook_secret=settings.bank_webhook_secrets[0] if url else None,
    )


async def sweep_pending_payments(
    container: Container, stop: asyncio.Event, on_error: Callable[[Exception], None]
) -> None:
    """Until `stop`: asks the bank's status lookup about pending payments whose callback
    is overdue, every second or a quarter of the pending timeout, whichever is shorter."""
    interval_s = min(1.0, container.settings().bank_pending_timeout_s / 4)
    send = container.mediator().send
    await pending_sweep.run_sweeper(send, stop, interval_s=interval_s, on_error=on_error)


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


# --- merchant webhooks over RabbitMQ: `gateway webhooks`

WEBHOOK_SWEEP_GRACE_S = 60.0
WEBHOOK_SWEEP_INTERVAL_S = 5.0


def webhook_sweeper(container: Container) -> WebhookDispatcher:
    """Rescues deliveries whose message was lost (an attempt that never reported back, a
    dropped message), a minute after they were due; the broker makes every other attempt."""
    return WebhookDispatcher(
        SqlDueDeliveries(container.engine()),
        container.mediator().send,
        container.clock(),
        grace_s=WEBHOOK_SWEEP_GRACE_S,
        interval_s=WEBHOOK_SWEEP_INTERVAL_S,
        on_error=_log_webhook_error,
    )


async def start_webhook_consumer(container: Container) -> Consumer:
    broker = _require_broker(container)
    handle = WebhookMessages(container.mediator().send)
    return await broker.consume_webhooks(handle, container.settings().worker_concurrency)
