"""Merchant webhooks: events, endpoints, sealed secrets, deliveries and attempts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Self-contained on purpose: plain column types, explicit constraint names that follow
`gateway.adapters.orm.NAMING_CONVENTION`. JSON is kept as text on every database.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
PENDING = sa.text("status = 'pending'")


def _id(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.String(64), nullable=False)


def _at(name: str, *, nullable: bool = False) -> sa.Column[sa.DateTime]:
    return sa.Column(name, TIMESTAMP, nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}")


def upgrade() -> None:
    op.create_table(
        "events",
        _id(),
        _id("merchant_id"),
        sa.Column("type", sa.String(32), nullable=False),
        _id("payment_id"),
        _at("created_at"),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        _fk("events", "merchant_id", "merchants"),
        _fk("events", "payment_id", "payments"),
    )
    op.create_index("ix_events_merchant_id_id", "events", ["merchant_id", "id"])
    op.create_index("ix_events_merchant_id_type_id", "events", ["merchant_id", "type", "id"])
    op.create_index(
        "ix_events_merchant_id_payment_id_id", "events", ["merchant_id", "payment_id", "id"]
    )
    _create_endpoints_and_secrets()
    _create_deliveries_and_attempts()


def _create_endpoints_and_secrets() -> None:
    op.create_table(
        "webhook_endpoints",
        _id(),
        _id("merchant_id"),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        _at("created_at"),
        _at("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoints"),
        _fk("webhook_endpoints", "merchant_id", "merchants"),
    )
    op.create_index(
        "ix_webhook_endpoints_merchant_id_id", "webhook_endpoints", ["merchant_id", "id"]
    )
    op.create_table(
        "webhook_secrets",
        _id(),
        _id("endpoint_id"),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        _at("created_at"),
        _at("expires_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_secrets"),
        _fk("webhook_secrets", "endpoint_id", "webhook_endpoints"),
    )
    op.create_index("ix_webhook_secrets_endpoint_id", "webhook_secrets", ["endpoint_id"])


def _create_deliveries_and_attempts() -> None:
    op.create_table(
        "webhook_deliveries",
        _id(),
        _id("event_id"),
        _id("endpoint_id"),
        _id("merchant_id"),
        _id("payment_id"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_attempt_at", nullable=True),
        _at("created_at"),
        _at("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        _fk("webhook_deliveries", "event_id", "events"),
        _fk("webhook_deliveries", "endpoint_id", "webhook_endpoints"),
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_payment_id_id",
        "webhook_deliveries",
        ["endpoint_id", "payment_id", "id"],
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_table(
        "webhook_attempts",
        _id(),
        _id("delivery_id"),
        _id("event_id"),
        _id("endpoint_id"),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        _at("attempted_at"),
        _at("next_attempt_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_attempts"),
        _fk("webhook_attempts", "delivery_id", "webhook_deliveries"),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])
    op.create_index("ix_webhook_attempts_endpoint_id_id", "webhook_attempts", ["endpoint_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_attempts_endpoint_id_id", table_name="webhook_attempts")
    op.drop_index("ix_webhook_attempts_delivery_id", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index(
        "ix_webhook_deliveries_endpoint_id_payment_id_id", table_name="webhook_deliveries"
    )
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_secrets_endpoint_id", table_name="webhook_secrets")
    op.drop_table("webhook_secrets")
    op.drop_index("ix_webhook_endpoints_merchant_id_id", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_events_merchant_id_payment_id_id", table_name="events")
    op.drop_index("ix_events_merchant_id_type_id", table_name="events")
    op.drop_index("ix_events_merchant_id_id", table_name="events")
    op.drop_table("events")
