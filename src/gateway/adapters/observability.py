"""Metrics and the mediator's pipeline behaviours (logging, timing)."""

from __future__ import annotations

import time
from functools import lru_cache

import structlog
from prometheus_client import Counter, Gauge, Histogram

from gateway.application.mediator import Next

MESSAGES = Counter("gateway_messages_total", "Commands and queries handled", ["message", "outcome"])
MESSAGE_SECONDS = Histogram(
    "gateway_message_seconds", "Time to handle a command or query", ["message"]
)
BANK_CALLS = Counter("gateway_bank_calls_total", "HTTP calls to the bank", ["outcome"])
BANK_SECONDS = Histogram(
    "gateway_bank_call_seconds",
    "Latency of one HTTP call to the bank",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTBOX_BACKLOG = Gauge("gateway_outbox_backlog", "Outbox rows not yet published")
OUTBOX_OLDEST = Gauge("gateway_outbox_oldest_age_seconds", "Age of the oldest unpublished row")
OUTBOX_PUBLISHED = Counter("gateway_outbox_published_total", "Outbox rows published")
DLQ_DEPTH = Gauge("gateway_dead_letter_depth", "Messages waiting in the dead-letter queue")
BATCH_PAYMENTS = Histogram(
    "gateway_worker_batch_payments",
    "Payments per shared load or settle statement of the worker (PostgreSQL)",
    ["statement"],
    buckets=(1, 2, 5, 10, 20, 50, 100),
)
ACCEPT_BATCH_PAYMENTS = Histogram(
    "gateway_accept_batch_payments",
    "Payments per accepting statement of the API (PostgreSQL)",
    buckets=(1, 2, 5, 10, 20, 50, 100),
)

_log = structlog.get_logger("gateway.mediator")
# `labels()` validates and locks on every call; message types and outcomes are few.
_messages = lru_cache(maxsize=256)(MESSAGES.labels)
_message_seconds = lru_cache(maxsize=256)(MESSAGE_SECONDS.labels)
_bank_calls = lru_cache(maxsize=64)(BANK_CALLS.labels)
_batch_payments = lru_cache(maxsize=8)(BATCH_PAYMENTS.labels)


def observe_bank_call(outcome: str, seconds: float) -> None:
    _bank_calls(outcome).inc()
    BANK_SECONDS.observe(seconds)


def observe_batch(statement: str, payments: int) -> None:
    _batch_payments(statement).observe(payments)


def observe_accept_batch(_statement: str, payments: int) -> None:
    ACCEPT_BATCH_PAYMENTS.observe(payments)


async def timing(message: object, call: Next) -> object:
    """Counts and times every message; the outcome is the Result's branch or `raised`."""
    name = type(message).__name__
    started = time.perf_counter()
    outcome = "raised"
    try:
        result = await call()
        outcome = type(result).__name__.lower() if result is not None else "ok"
        return result
    finally:
        _messages(name, outcome).inc()
        _message_seconds(name).observe(time.perf_counter() - started)


async def logging(message: object, call: Next) -> object:
    """Logs commands that fail or take long; never the message itself (it may hold card data)."""
    name = type(message).__name__
    started = time.perf_counter()
    try:
        return await call()
    except Exception:
        _log.exception("message_failed", message=name)
        raise
    finally:
        elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
        if elapsed_ms > 1000:
            _log.warning("message_slow", message=name, duration_ms=elapsed_ms)
