"""Initial schema: merchants, api keys, payments, jobs, card data, outbox, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Self-contained on purpose: plain column types, explicit constraint names that follow
`gateway.adapters.orm.NAMING_CONVENTION`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def _id(name: str = "id", *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), nullable=nullable)


def _at(name: str, *, nullable: bool = False) -> sa.Column[sa.DateTime]:
    return sa.Column(name, TIMESTAMP, nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "merchants",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_merchants"),
    )
    op.create_table(
        "api_keys",
        _id(),
        _id("merchant_id"),
        sa.Column("prefix", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        _at("created_at"),
        _at("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name="fk_api_keys_merchant_id_merchants"
        ),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_index("ix_api_keys_merchant_id", "api_keys", ["merchant_id"])
    _create_payments()
    _create_jobs_and_card_data()
    _create_outbox_and_idempotency_keys()


def _create_payments() -> None:
    op.create_table(
        "payments",
        _id(),
        _id("merchant_id"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(50), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("card_scheme", sa.String(16), nullable=False),
        sa.Column("card_bin", sa.String(6), nullable=False),
        sa.Column("card_last4", sa.String(4), nullable=False),
        sa.Column("card_expiry_month", sa.Integer(), nullable=False),
        sa.Column("card_expiry_year", sa.Integer(), nullable=False),
        sa.Column("card_holder_name", sa.String(100), nullable=True),
        sa.Column("decline_code", sa.String(64), nullable=True),
        sa.Column("authorization_code", sa.String(64), nullable=True),
        sa.Column("failure_code", sa.String(64), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name="fk_payments_merchant_id_merchants"
        ),
    )
    op.create_index("ix_payments_merchant_id_id", "payments", ["merchant_id", "id"])
    op.create_index(
        "ix_payments_merchant_id_status_id", "payments", ["merchant_id", "status", "id"]
    )
    op.create_index(
        "ix_payments_merchant_id_reference_id", "payments", ["merchant_id", "reference", "id"]
    )


def _create_jobs_and_card_data() -> None:
    op.create_table(
        "jobs",
        _id(),
        _id("merchant_id"),
        _id("payment_id"),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        _at("created_at"),
        _at("completed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name="fk_jobs_payment_id_payments"
        ),
        sa.UniqueConstraint("payment_id", name="uq_jobs_payment_id"),
    )
    op.create_table(
        "card_data",
        _id("payment_id"),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("payment_id", name="pk_card_data"),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name="fk_card_data_payment_id_payments"
        ),
    )


def _create_outbox_and_idempotency_keys() -> None:
    op.create_table(
        "outbox",
        _id(),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _at("created_at"),
        _at("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    unsent = sa.text("sent_at IS NULL")
    op.create_index(
        "ix_outbox_unsent", "outbox", ["id"], postgresql_where=unsent, sqlite_where=unsent
    )
    op.create_table(
        "idempotency_keys",
        _id("merchant_id"),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        _id("job_id"),
        _id("payment_id"),
        _at("created_at"),
        sa.PrimaryKeyConstraint("merchant_id", "key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("card_data")
    op.drop_table("jobs")
    op.drop_index("ix_payments_merchant_id_reference_id", table_name="payments")
    op.drop_index("ix_payments_merchant_id_status_id", table_name="payments")
    op.drop_index("ix_payments_merchant_id_id", table_name="payments")
    op.drop_table("payments")
    op.drop_index("ix_api_keys_merchant_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("merchants")
