"""The schema as SQLAlchemy Core tables. Domain classes stay plain: rows are mapped by hand
in `repository.py` and `views.py`.

Timestamps are timezone-aware UTC in and out on every database; ids are time-ordered
strings (`pay_01J…`), so `ORDER BY id DESC` lists newest first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes only; stored as UTC; read back aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must be timezone-aware")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JsonText(TypeDecorator[Mapping[str, str]]):
    """A JSON object of strings kept as text: the same on SQLite and PostgreSQL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Mapping[str, str] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return msgspec.json.encode(dict(value), order="sorted").decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Mapping[str, str] | None:
        if value is None:
            return None
        loaded: dict[str, str] = json.loads(value)
        return loaded


def _id(name: str = "id", *args: Any, **kwargs: Any) -> Column[str]:
    return Column(name, String(64), *args, **kwargs)


def _at(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, UtcDateTime(), nullable=nullable)


merchants = Table(
    "merchants",
    metadata,
    _id(primary_key=True),
    Column("name", String(200), nullable=False),
    _at("created_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(primary_key=True),
    _id("merchant_id", ForeignKey("merchants.id"), nullable=False, index=True),
    Column("prefix", String(64), nullable=False, unique=True),
    Column("digest", String(128), nullable=False),
    _at("created_at"),
    _at("revoked_at", nullable=True),
)

payments = Table(
    "payments",
    metadata,
    _id(primary_key=True),
    _id("merchant_id", ForeignKey("merchants.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(50), nullable=True),
    Column("metadata", JsonText(), nullable=False),
    Column("card_scheme", String(16), nullable=False),
    Column("card_bin", String(6), nullable=False),
    Column("card_last4", String(4), nullable=False),
    Column("card_expiry_month", Integer, nullable=False),
    Column("card_expiry_year", Integer, nullable=False),
    Column("card_holder_name", String(100), nullable=True),
    Column("decline_code", String(64), nullable=True),
    Column("authorization_code", String(64), nullable=True),
    Column("failure_code", String(64), nullable=True),
    _at("created_at"),
    _at("updated_at"),
    # Listing is per merchant, newest first (id DESC), optionally filtered.
    Index("ix_payments_merchant_id_id", "merchant_id", "id"),
    Index("ix_payments_merchant_id_status_id", "merchant_id", "status", "id"),
    Index("ix_payments_merchant_id_reference_id", "merchant_id", "reference", "id"),
)

jobs = Table(
    "jobs",
    metadata,
    _id(primary_key=True),
    _id("merchant_id", nullable=False),
    _id("payment_id", ForeignKey("payments.id"), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    _at("created_at"),
    _at("completed_at", nullable=True),
)

card_data = Table(
    "card_data",
    metadata,
    _id("payment_id", ForeignKey("payments.id"), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    _at("created_at"),
)

outbox = Table(
    "outbox",
    metadata,
    _id(primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JsonText(), nullable=False),
    _at("created_at"),
    _at("sent_at", nullable=True),
)
# Only unsent rows are ever claimed: a partial index keeps that lookup small.
Index(
    "ix_outbox_unsent",
    outbox.c.id,
    postgresql_where=outbox.c.sent_at.is_(None),
    sqlite_where=outbox.c.sent_at.is_(None),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _id("merchant_id", nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(128), nullable=False),
    _id("job_id", nullable=False),
    _id("payment_id", nullable=False),
    _at("created_at"),
    PrimaryKeyConstraint("merchant_id", "key"),
)

# Bank callbacks whose signature was valid, for audit; the event id makes them idempotent.
bank_callbacks = Table(
    "bank_callbacks",
    metadata,
    Column("event_id", String(255), primary_key=True),
    _id("payment_id", nullable=False, index=True),
    Column("type", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),
    _at("received_at"),
    _at("signature_timestamp"),
)

# Payments the bank answered `202` for: settled by its callback or, when due, a lookup.
pending_payments = Table(
    "pending_payments",
    metadata,
    _id("payment_id", ForeignKey("payments.id"), primary_key=True),
    _id("job_id", nullable=False),
    _id("merchant_id", nullable=False),
    _at("pending_since"),
    _at("next_lookup_at"),
    Column("lookups", Integer, nullable=False),
    Index("ix_pending_payments_next_lookup_at", "next_lookup_at"),
)


class JsonDocument(TypeDecorator[Any]):
    """Any JSON value kept as text, key order preserved: the same on every database."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return msgspec.json.encode(value).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


# Merchant webhooks: the merchant's events, endpoints with sealed secrets, deliveries and
# every attempt. `data` is the payment as `GET /payments/{id}` showed it at the event.
events = Table(
    "events",
    metadata,
    _id(primary_key=True),
    _id("merchant_id", ForeignKey("merchants.id"), nullable=False),
    Column("type", String(32), nullable=False),
    _id("payment_id", ForeignKey("payments.id"), nullable=False),
    _at("created_at"),
    Column("data", JsonDocument(), nullable=False),
    Index("ix_events_merchant_id_id", "merchant_id", "id"),
    Index("ix_events_merchant_id_type_id", "merchant_id", "type", "id"),
    Index("ix_events_merchant_id_payment_id_id", "merchant_id", "payment_id", "id"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    _id(primary_key=True),
    _id("merchant_id", ForeignKey("merchants.id"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("events", JsonDocument(), nullable=False),
    _at("created_at"),
    _at("deleted_at", nullable=True),
    Index("ix_webhook_endpoints_merchant_id_id", "merchant_id", "id"),
)

webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    _id(primary_key=True),
    _id("endpoint_id", ForeignKey("webhook_endpoints.id"), nullable=False, index=True),
    Column("sealed", LargeBinary, nullable=False),
    _at("created_at"),
    _at("expires_at", nullable=True),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(primary_key=True),
    _id("event_id", ForeignKey("events.id"), nullable=False),
    _id("endpoint_id", ForeignKey("webhook_endpoints.id"), nullable=False),
    _id("merchant_id", nullable=False),
    _id("payment_id", nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    _at("next_attempt_at", nullable=True),
    _at("created_at"),
    _at("delivered_at", nullable=True),
    # Per-payment order per endpoint: the earlier pending delivery holds the later ones.
    Index("ix_webhook_deliveries_endpoint_id_payment_id_id", "endpoint_id", "payment_id", "id"),
)
# The sweep looks only at pending deliveries, by when they are due.
Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.next_attempt_at,
    postgresql_where=webhook_deliveries.c.status == "pending",
    sqlite_where=webhook_deliveries.c.status == "pending",
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    _id(primary_key=True),
    _id("delivery_id", ForeignKey("webhook_deliveries.id"), nullable=False, index=True),
    _id("event_id", nullable=False),
    _id("endpoint_id", nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(200), nullable=True),
    Column("duration_ms", Integer, nullable=False),
    _at("attempted_at"),
    _at("next_attempt_at", nullable=True),
    Index("ix_webhook_attempts_endpoint_id_id", "endpoint_id", "id"),
)
