"""Asynchronous bank outcomes: the audit of bank callbacks and the pending-payment timers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

`bank_callbacks` keeps every callback whose signature was valid (no card data: ids, type,
what it did). `pending_payments` holds one row per payment the bank answered `202` for,
until its callback or a status lookup settles it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _id(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), nullable=False)


def _at(name: str) -> sa.Column[sa.DateTime]:
    return sa.Column(name, TIMESTAMP, nullable=False)


def upgrade() -> None:
    op.create_table(
        "bank_callbacks",
        sa.Column("event_id", sa.String(255), nullable=False),
        _id("payment_id"),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        _at("received_at"),
        _at("signature_timestamp"),
        sa.PrimaryKeyConstraint("event_id", name="pk_bank_callbacks"),
    )
    op.create_index("ix_bank_callbacks_payment_id", "bank_callbacks", ["payment_id"])
    op.create_table(
        "pending_payments",
        _id("payment_id"),
        _id("job_id"),
        _id("merchant_id"),
        _at("pending_since"),
        _at("next_lookup_at"),
        sa.Column("lookups", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("payment_id", name="pk_pending_payments"),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name="fk_pending_payments_payment_id_payments"
        ),
    )
    op.create_index("ix_pending_payments_next_lookup_at", "pending_payments", ["next_lookup_at"])


def downgrade() -> None:
    op.drop_index("ix_pending_payments_next_lookup_at", table_name="pending_payments")
    op.drop_table("pending_payments")
    op.drop_index("ix_bank_callbacks_payment_id", table_name="bank_callbacks")
    op.drop_table("bank_callbacks")
