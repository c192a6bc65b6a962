"""What crosses the broker: JSON bodies of ids, never card data."""

from __future__ import annotations

import json

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from gateway.adapters.rabbitmq_topology import MAKE_PAYMENT
from gateway.application.ports import OutboxMessage
from gateway.domain.commands import AbandonPayment, MakePayment

CONTENT_TYPE = "application/json"
_FIELDS = ("payment_id", "job_id", "merchant_id")


def encode(message: OutboxMessage) -> aio_pika.Message:
    """A persistent message whose `message_id` is the outbox row id."""
    return aio_pika.Message(
        body=json.dumps(message.payload, separators=(",", ":"), sort_keys=True).encode(),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.id,
        type=message.kind,
        timestamp=message.created_at,
    )


def decode_make_payment(message: AbstractIncomingMessage) -> MakePayment | None:
    """The command, or None when the message is not a well-formed `MakePayment`."""
    if message.type != MAKE_PAYMENT:
        return None
    try:
        data = json.loads(message.body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    values = [data.get(name) for name in _FIELDS]
    if not all(isinstance(value, str) and value for value in values):
        return None
    payment_id, job_id, merchant_id = (str(value) for value in values)
    return MakePayment(payment_id, job_id, merchant_id)


def decode_dead_letter(message: AbstractIncomingMessage) -> AbandonPayment | None:
    """A dead-lettered `MakePayment` as the command that gives its payment up."""
    command = decode_make_payment(message)
    if command is None:
        return None
    return AbandonPayment(
        command.payment_id, command.job_id, command.merchant_id, dead_letter_reason(message)
    )


def dead_letter_reason(message: AbstractIncomingMessage) -> str:
    """Why the broker dead-lettered it: `delivery_limit`, `rejected`, `expired`…"""
    reason = (message.headers or {}).get("x-first-death-reason")
    return reason if isinstance(reason, str) else "unknown"
