"""`gateway relay`: publishes the transactional outbox to RabbitMQ.

Any number may run side by side: each claims its rows `FOR UPDATE SKIP LOCKED`. A row is
marked sent only after the broker confirmed it. While the broker (or the database) is
down the relay backs off, growing to 10 s, and catches up when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from gateway import bootstrap
from gateway.config import Settings
from gateway.entrypoints.signals import sleep_unless, stop_on_signals, unless_stopped

GAUGE_INTERVAL_S = 5.0
PURGE_INTERVAL_S = 60.0
PURGE_SENT_AFTER = timedelta(hours=1)

_log = structlog.get_logger("gateway.relay")


async def run_relay(settings: Settings, stop: asyncio.Event | None = None) -> None:
    container = bootstrap.build(settings, "relay")
    async with contextlib.AsyncExitStack() as stack:
        if stop is None:
            stop = stack.enter_context(stop_on_signals())
        stack.push_async_callback(bootstrap.close_broker, container)
        stack.push_async_callback(container.engine().dispose)
        if not await unless_stopped(bootstrap.connect_broker(container), stop):
            return
        relay = bootstrap.broker_relay(container, _log_backoff)
        _log.info("relay_started")
        gauges = asyncio.create_task(_refresh_gauges(container, stop))
        purge = asyncio.create_task(_purge_sent(container, stop))
        await relay.run(stop)
        await asyncio.gather(gauges, purge)
        _log.info("relay_stopped", published=relay.published)


def _log_backoff(error: Exception, delay_s: float) -> None:
    _log.warning("relay_backoff", error=type(error).__name__, retry_in_s=round(delay_s, 2))


async def _refresh_gauges(container: bootstrap.Container, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await bootstrap.refresh_outbox_gauges(container)
        except Exception as error:
            _log.warning("outbox_gauges_failed", error=type(error).__name__)
        await sleep_unless(stop, GAUGE_INTERVAL_S)


async def _purge_sent(container: bootstrap.Container, stop: asyncio.Event) -> None:
    """Sent rows are kept an hour (to look into a recent delivery), then deleted: the
    outbox would otherwise grow by a row per payment and webhook attempt forever."""
    while True:
        await sleep_unless(stop, PURGE_INTERVAL_S)
        if stop.is_set():
            return
        try:
            purged = await container.outbox_store().purge_sent(PURGE_SENT_AFTER)
        except Exception as error:
            _log.warning("outbox_purge_failed", error=type(error).__name__)
            continue
        if purged:
            _log.info("outbox_purged", rows=purged)
