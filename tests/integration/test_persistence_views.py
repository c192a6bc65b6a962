"""The read side (`SqlViews`) against real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.adapters.views import SqlViews
from gateway.application.queries import PaymentFilter
from gateway.domain.merchant import Merchant
from gateway.domain.model import JobError, PaymentStatus
from tests.fixtures.database import a_job, a_payment, stored_merchant, stored_payment


def page(
    limit: int = 10,
    starting_after: str | None = None,
    status: PaymentStatus | None = None,
    reference: str | None = None,
) -> PaymentFilter:
    return PaymentFilter(limit, starting_after, status, reference)


async def test_payment_view_shows_the_stored_payment(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    payment = await stored_payment(
        engine, merchant.id, reference="ORD-001", metadata={"customer": "c_42"}
    )

    view = await SqlViews(engine).payment(merchant.id, payment.id)

    assert view is not None
    assert (view.id, view.status, view.amount, view.currency) == (
        payment.id,
        "pending",
        1050,
        "GBP",
    )
    assert view.reference == "ORD-001"
    assert dict(view.metadata) == {"customer": "c_42"}
    assert (view.card.scheme, view.card.bin, view.card.last4) == ("visa", "424242", "4242")
    assert (view.card.expiry_month, view.card.expiry_year) == (12, 2030)
    assert view.card.holder_name == "Jane Doe"
    assert view.decline_code is None
    assert view.authorization_code is None
    assert view.created_at == payment.created_at
    assert view.created_at.tzinfo is not None


async def test_job_view_shows_status_and_error(engine: AsyncEngine, merchant: Merchant) -> None:
    payment = a_payment(merchant.id)
    job = a_job(payment)
    finished = datetime.now(UTC)
    job.fail(JobError("bank_unavailable", "no answer"), finished)
    async with SqlUnitOfWork(engine) as uow:
        uow.payments.add(payment)
        uow.jobs.add(job)
        await uow.commit()

    view = await SqlViews(engine).job(merchant.id, job.id)

    assert view is not None
    assert (view.id, view.status, view.payment_id) == (job.id, "failed", payment.id)
    assert (view.error_code, view.error_message) == ("bank_unavailable", "no answer")
    assert view.completed_at == finished


async def test_another_merchant_sees_nothing(engine: AsyncEngine, merchant: Merchant) -> None:
    other = await stored_merchant(engine, "Other")
    payment = a_payment(merchant.id)
    job = a_job(payment)
    async with SqlUnitOfWork(engine) as uow:
        uow.payments.add(payment)
        uow.jobs.add(job)
        await uow.commit()
    views = SqlViews(engine)

    assert await views.payment(other.id, payment.id) is None
    assert await views.job(other.id, job.id) is None
    assert (await views.payments(other.id, page())).data == []
    assert await views.payment(merchant.id, "pay_missing") is None


async def test_list_pages_newest_first_until_no_more(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    created = [(await stored_payment(engine, merchant.id)).id for _ in range(25)]
    newest_first = list(reversed(created))
    views = SqlViews(engine)

    first = await views.payments(merchant.id, page(10))
    second = await views.payments(merchant.id, page(10, first.data[-1].id))
    third = await views.payments(merchant.id, page(10, second.data[-1].id))

    assert [p.id for p in first.data] == newest_first[:10]
    assert [p.id for p in second.data] == newest_first[10:20]
    assert [p.id for p in third.data] == newest_first[20:]
    assert (first.has_more, second.has_more, third.has_more) == (True, True, False)


async def test_a_page_exactly_full_has_no_more(engine: AsyncEngine, merchant: Merchant) -> None:
    for _ in range(3):
        await stored_payment(engine, merchant.id)

    listed = await SqlViews(engine).payments(merchant.id, page(3))

    assert len(listed.data) == 3
    assert not listed.has_more


async def test_list_filters_by_status_and_reference(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    pending = await stored_payment(engine, merchant.id, reference="ORD-1")
    await stored_payment(engine, merchant.id, reference="ORD-2")
    settled = await stored_payment(engine, merchant.id, reference="ORD-1")
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.payments.get(settled.id, for_update=True)
        assert stored is not None
        stored.authorize("A1B2C3", datetime.now(UTC))
        await uow.payments.save(stored)
        await uow.commit()
    views = SqlViews(engine)

    authorized = await views.payments(merchant.id, page(status=PaymentStatus.AUTHORIZED))
    order_1 = await views.payments(merchant.id, page(reference="ORD-1"))
    both = await views.payments(merchant.id, page(status=PaymentStatus.PENDING, reference="ORD-1"))

    assert [p.id for p in authorized.data] == [settled.id]
    assert authorized.data[0].authorization_code == "A1B2C3"
    assert [p.id for p in order_1.data] == [settled.id, pending.id]
    assert [p.id for p in both.data] == [pending.id]
