"""The HTTP entrypoint: `create_app(container)` builds the Litestar application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import structlog
from litestar import Litestar, Router
from litestar.di import Provide

from gateway import bootstrap
from gateway.bootstrap import Container
from gateway.entrypoints.http.allow import AllowEveryMethod
from gateway.entrypoints.http.auth import SECURITY, principal_provider
from gateway.entrypoints.http.bank_webhooks import BankWebhookController
from gateway.entrypoints.http.events import EventController
from gateway.entrypoints.http.forwarded import ForwardedHeaders
from gateway.entrypoints.http.health import HealthController, Readiness
from gateway.entrypoints.http.jobs import JobController
from gateway.entrypoints.http.metrics import scrape_metrics
from gateway.entrypoints.http.middleware import RequestContextMiddleware
from gateway.entrypoints.http.nul_guard import refuse_nul
from gateway.entrypoints.http.openapi import openapi_config
from gateway.entrypoints.http.payments import PaymentController
from gateway.entrypoints.http.problems import EXCEPTION_HANDLERS
from gateway.entrypoints.http.webhook_endpoints import WebhookEndpointController

RELAY_STOP_TIMEOUT_S = 10.0

_log = structlog.get_logger("gateway.http")


def create_app(container: Container, *, embedded_relay: bool = False) -> Litestar:
    """`embedded_relay`: also deliver the outbox in this process (`gateway dev`, tests)."""
    readiness = Readiness(
        {
            "database": partial(bootstrap.database_ready, container),
            "broker": partial(bootstrap.broker_ready, container),
        }
    )
    api = Router(
        "/",
        route_handlers=[
            PaymentController,
            JobController,
            WebhookEndpointController,
            EventController,
        ],
        dependencies={
            "principal": principal_provider(container.authenticator(), container.request_limits())
        },
        security=SECURITY,
    )
    app = Litestar(
        route_handlers=[api, HealthController, scrape_metrics, BankWebhookController],
        dependencies={
            "mediator": _constant(container.mediator()),
            "readiness": _constant(readiness),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=refuse_nul,  # the only before_request hook: a lower layer's would win
        lifespan=[partial(_lifespan, container=container, embedded_relay=embedded_relay)],
        openapi_config=openapi_config(),
        request_max_body_size=container.settings().max_body_bytes,
        logging_config=None,
    )
    # Outermost, around Litestar's own exception handling: route middleware would miss
    # the router's 404 and 405 answers (Litestar's OpenTelemetry plugin wraps it likewise).
    # Forwarded headers first: the access log and the rate limits see the real client.
    app.asgi_handler = ForwardedHeaders(
        RequestContextMiddleware(AllowEveryMethod(app.asgi_handler, app)),
        container.settings().trusted_proxies,
    )
    return app


def _constant(value: object) -> Provide:
    async def provide() -> Any:
        return value

    return Provide(provide, use_cache=True)


@contextlib.asynccontextmanager
async def _lifespan(
    _app: Litestar, *, container: Container, embedded_relay: bool
) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            contextlib.asynccontextmanager(bootstrap.lifespan)(container)
        )
        # readiness connects to the broker (when one is configured) on first use
        stack.push_async_callback(bootstrap.close_broker, container)
        # before the pool closes: an API-key refresh in the background may still run on it
        stack.push_async_callback(container.authenticator().close)
        if embedded_relay:
            stop = asyncio.Event()
            relay = asyncio.create_task(bootstrap.in_process_relay(container).run(stop))
            stack.push_async_callback(_stopped, relay)
            sweep = bootstrap.sweep_pending_payments(container, stop, _sweep_failed)
            stack.push_async_callback(_stopped, asyncio.create_task(sweep))
            webhooks = container.webhook_dispatcher().run(stop)  # retries when due
            stack.push_async_callback(_stopped, asyncio.create_task(webhooks))
            stack.callback(stop.set)
        yield


def _sweep_failed(error: Exception) -> None:
    _log.warning("pending_sweep_failed", error=type(error).__name__)


async def _stopped(task: asyncio.Task[None]) -> None:
    """Lets a batch in flight finish; cancels it past the timeout (it is sent again later)."""
    done, _ = await asyncio.wait({task}, timeout=RELAY_STOP_TIMEOUT_S)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
