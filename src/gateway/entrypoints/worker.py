"""`gateway worker`: takes `MakePayment` from RabbitMQ to the bank and the database.

Many messages are processed at once (prefetch = `GATEWAY_WORKER_CONCURRENCY`), so a slow
bank does not cap throughput. Each message is acked after its outcome is committed.
SIGTERM stops consuming and lets in-flight payments finish for `GRACE_S`; what is left
is returned to the queue. Dead-lettered messages fail their job (`processing_failed`).
Alongside, it sweeps the payments the bank answered `202` for and whose callback is
overdue: their status lookup settles them (any number of workers share the sweep).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gateway import bootstrap
from gateway.config import Settings
from gateway.entrypoints.signals import sleep_unless, stop_on_signals, unless_stopped

GRACE_S = 20.0
GAUGE_INTERVAL_S = 5.0

_log = structlog.get_logger("gateway.worker")


async def run_worker(
    settings: Settings, stop: asyncio.Event | None = None, *, grace_s: float = GRACE_S
) -> None:
    container = bootstrap.build(settings, "worker")
    async with contextlib.AsyncExitStack() as stack:
        if stop is None:
            stop = stack.enter_context(stop_on_signals())
        await stack.enter_async_context(_resources(container))
        stack.push_async_callback(bootstrap.close_broker, container)
        if not await unless_stopped(bootstrap.connect_broker(container), stop):
            return
        consumers = await bootstrap.start_consuming(container)
        sweep = asyncio.create_task(
            bootstrap.sweep_pending_payments(container, stop, _sweep_failed)
        )
        _log.info("worker_started", prefetch=settings.worker_concurrency)
        while not stop.is_set():
            await _refresh_gauge(container)
            await sleep_unless(stop, GAUGE_INTERVAL_S)
        _log.info("worker_stopping", grace_s=grace_s)
        await asyncio.gather(consumers.stop(grace_s), _stopped(sweep, grace_s))
        _log.info("worker_stopped")


async def _refresh_gauge(container: bootstrap.Container) -> None:
    try:
        async with asyncio.timeout(GAUGE_INTERVAL_S):
            await bootstrap.refresh_dead_letter_gauge(container)
    except Exception as error:
        _log.warning("dead_letter_gauge_failed", error=type(error).__name__)


def _sweep_failed(error: Exception) -> None:
    _log.warning("pending_sweep_failed", error=type(error).__name__)


async def _stopped(task: asyncio.Task[None], grace_s: float) -> None:
    """Lets a sweep in flight finish; past the grace it is cancelled (its rows are swept
    again once their lease runs out)."""
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _resources(container: bootstrap.Container) -> contextlib.AbstractAsyncContextManager[None]:
    """Closes the bank client and the database pool on the way out."""
    return contextlib.asynccontextmanager(bootstrap.lifespan)(container)
