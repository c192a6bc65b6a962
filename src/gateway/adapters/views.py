"""The read side over SQL: one `SELECT` per question, always scoped by merchant."""

from __future__ import annotations

from types import MappingProxyType

from sqlalchemy import Select, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.orm import jobs, payments
from gateway.adapters.repository import job_from_row
from gateway.application.queries import CardView, JobView, PaymentFilter, PaymentPage, PaymentView


class SqlViews:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def job(self, merchant_id: str, job_id: str) -> JobView | None:
        query = select(jobs).where(jobs.c.merchant_id == merchant_id, jobs.c.id == job_id)
        rows = await self._fetch(query)
        return JobView.of(job_from_row(rows[0])) if rows else None

    async def payment(self, merchant_id: str, payment_id: str) -> PaymentView | None:
        query = select(payments).where(
            payments.c.merchant_id == merchant_id, payments.c.id == payment_id
        )
        rows = await self._fetch(query)
        return payment_view(rows[0]) if rows else None

    async def payments(self, merchant_id: str, page: PaymentFilter) -> PaymentPage:
        """Newest first; one row more than the page says whether another page follows."""
        query = select(payments).where(payments.c.merchant_id == merchant_id)
        if page.starting_after is not None:
            query = query.where(payments.c.id < page.starting_after)
        if page.status is not None:
            query = query.where(payments.c.status == page.status.value)
        if page.reference is not None:
            query = query.where(payments.c.reference == page.reference)
        rows = await self._fetch(query.order_by(payments.c.id.desc()).limit(page.limit + 1))
        views = [payment_view(row) for row in rows[: page.limit]]
        return PaymentPage(data=views, has_more=len(rows) > page.limit)

    async def _fetch(self, query: Select[tuple[object, ...]]) -> list[RowMapping]:
        async with self._engine.connect() as connection:
            return list((await connection.execute(query)).mappings().all())


def payment_view(row: RowMapping) -> PaymentView:
    return PaymentView(
        id=row["id"],
        status=row["status"],
        amount=row["amount"],
        currency=row["currency"],
        reference=row["reference"],
        metadata=MappingProxyType(dict(row["metadata"])),
        card=CardView(
            scheme=row["card_scheme"],
            bin=row["card_bin"],
            last4=row["card_last4"],
            expiry_month=row["card_expiry_month"],
            expiry_year=row["card_expiry_year"],
            holder_name=row["card_holder_name"],
        ),
        decline_code=row["decline_code"],
        authorization_code=row["authorization_code"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
