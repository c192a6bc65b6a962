"""Queries through the real mediator: not found, and every list parameter validated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.application.queries import (
    CardView,
    GetJob,
    GetPayment,
    JobView,
    ListPayments,
    PaymentFilter,
    PaymentView,
    parse_filter,
)
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.model import Job, JobError, JobStatus, PaymentStatus
from gateway.domain.result import Err, Ok
from tests.unit.fakes import FakeViews, Gateway

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def payment_view(payment_id: str, status: str = "authorized") -> PaymentView:
    card = CardView("visa", "424242", "4242", 12, 2030, None)
    return PaymentView(
        payment_id, status, 1050, "GBP", None, {}, card, None, "A1", NOW, NOW
    )  # fmt: skip


def gateway_with(views: FakeViews) -> Gateway:
    return Gateway(views=views)


async def test_get_job_returns_the_view_or_not_found() -> None:
    view = JobView("job_1", "created", "pay_1", None, None, NOW, None)
    gateway = gateway_with(FakeViews(jobs=[view]))
    assert await gateway.mediator.ask(GetJob("mer_1", "job_1")) == Ok(view)
    assert await gateway.mediator.ask(GetJob("mer_1", "job_2")) == Err(NotFound("job"))


async def test_another_merchants_payment_is_not_found() -> None:
    gateway = gateway_with(FakeViews(payments=[("mer_1", payment_view("pay_1"))]))
    assert await gateway.mediator.ask(GetPayment("mer_1", "pay_1")) == Ok(payment_view("pay_1"))
    assert await gateway.mediator.ask(GetPayment("mer_2", "pay_1")) == Err(NotFound("payment"))


def test_job_view_of_a_failed_job_carries_its_error() -> None:
    job = Job("job_1", "mer_1", "pay_1", NOW, JobStatus.FAILED, JobError("bank_unavailable", "x"))
    view = JobView.of(job)
    assert (view.status, view.error_code, view.error_message) == ("failed", "bank_unavailable", "x")
    assert JobView.of(Job("job_2", "mer_1", "pay_2", NOW)).error_code is None


async def test_list_payments_defaults_to_twenty_newest_without_filters() -> None:
    views = FakeViews(payments=[("mer_1", payment_view(f"pay_{i}")) for i in range(25)])
    gateway = gateway_with(views)
    result = await gateway.mediator.ask(ListPayments("mer_1"))
    assert isinstance(result, Ok)
    assert (len(result.value.data), result.value.has_more) == (20, True)
    assert views.filters == [PaymentFilter(20, None, None, None)]


async def test_list_payments_passes_every_filter_on() -> None:
    views = FakeViews()
    gateway = gateway_with(views)
    query = ListPayments("mer_1", "5", "pay_01ABC", "declined", "ORD-1")
    assert isinstance(await gateway.mediator.ask(query), Ok)
    assert views.filters == [PaymentFilter(5, "pay_01ABC", PaymentStatus.DECLINED, "ORD-1")]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "", "1.5", "1e2", " 5", "99999", "٣"])
async def test_a_bad_limit_is_a_validation_error(limit: str) -> None:
    views = FakeViews()
    result = await gateway_with(views).mediator.ask(ListPayments("mer_1", limit=limit))
    assert isinstance(result, Err)
    assert [(e.param, e.code) for e in result.error.errors] == [("limit", "validation_error")]
    assert views.filters == []


@given(st.integers(min_value=-1000, max_value=10_000))
def test_limit_is_ok_iff_from_1_to_100(limit: int) -> None:
    result = parse_filter(ListPayments("mer_1", limit=str(limit)))
    if 1 <= limit <= 100:
        assert isinstance(result, Ok)
        assert result.value.limit == limit
    else:
        assert isinstance(result, Err)


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(
    st.text(max_size=12).filter(lambda s: s not in {"pending", "authorized", "declined", "failed"})
)
def test_an_unknown_status_is_a_validation_error(status: str) -> None:
    result = parse_filter(ListPayments("mer_1", status=status))
    assert isinstance(result, Err)
    assert [e.param for e in result.error.errors] == ["status"]


@pytest.mark.parametrize("status", ["pending", "authorized", "declined", "failed"])
def test_every_payment_status_is_a_valid_filter(status: str) -> None:
    result = parse_filter(ListPayments("mer_1", status=status))
    assert isinstance(result, Ok)
    assert result.value.status is PaymentStatus(status)


async def test_every_bad_parameter_is_reported_at_once() -> None:
    query = ListPayments("mer_1", "0", "job_1", "settled", "r" * 51)
    result = await gateway_with(FakeViews()).mediator.ask(query)
    assert isinstance(result, Err)
    assert isinstance(result.error, ValidationFailed)
    params = [e.param for e in result.error.errors]
    assert sorted(params) == ["limit", "reference", "starting_after", "status"]
