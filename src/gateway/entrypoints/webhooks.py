"""`gateway webhooks`: delivers merchant webhooks from RabbitMQ.

Consumes `<prefix>.webhooks` (many deliveries at once, prefetch =
`GATEWAY_WORKER_CONCURRENCY`); a failed attempt is retried through the broker's delay
queues, so no worker sleeps. A sweep rescues deliveries whose message was lost. SIGTERM
stops consuming and lets attempts in flight finish for `GRACE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gateway import bootstrap
from gateway.config import PREFIX, ConfigError, Settings
from gateway.entrypoints.signals import stop_on_signals, unless_stopped

GRACE_S = 15.0

_log = structlog.get_logger("gateway.webhooks")


async def run_webhooks(
    settings: Settings, stop: asyncio.Event | None = None, *, grace_s: float = GRACE_S
) -> None:
    if settings.broker_url is None:
        raise ConfigError(f"{PREFIX}BROKER_URL must be set (amqp://…) for `gateway webhooks`")
    container = bootstrap.build(settings, "webhooks")
    async with contextlib.AsyncExitStack() as stack:
        if stop is None:
            stop = stack.enter_context(stop_on_signals())
        await stack.enter_async_context(
            contextlib.asynccontextmanager(bootstrap.lifespan)(container)
        )
        stack.push_async_callback(bootstrap.close_broker, container)
        if not await unless_stopped(bootstrap.connect_broker(container), stop):
            return
        consumer = await bootstrap.start_webhook_consumer(container)
        _log.info("webhooks_started", prefetch=settings.worker_concurrency)
        await bootstrap.webhook_sweeper(container).run(stop, grace_s=grace_s)
        _log.info("webhooks_stopping", grace_s=grace_s)
        await consumer.stop(grace_s)
        _log.info("webhooks_stopped")
