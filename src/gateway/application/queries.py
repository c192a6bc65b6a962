"""The read side: queries, frozen read models, and the port that answers them.

Every query carries `merchant_id`, so another merchant's data is simply not found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from gateway.domain.errors import FieldError, NotFound, ValidationFailed
from gateway.domain.model import Job, PaymentStatus
from gateway.domain.result import Err, Ok, Result

R = TypeVar("R", covariant=True)
MAX_PAGE = 100
MAX_ID = 64
DEFAULT_PAGE = 20


class Query(Generic[R]):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class JobView:
    id: str
    status: str
    payment_id: str
    error_code: str | None
    error_message: str | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        error = job.error
        return cls(
            id=job.id,
            status=job.status.value,
            payment_id=job.payment_id,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            created_at=job.created_at,
            completed_at=job.completed_at,
        )


@dataclass(frozen=True, slots=True)
class CardView:
    scheme: str
    bin: str
    last4: str
    expiry_month: int
    expiry_year: int
    holder_name: str | None


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: str
    status: str
    amount: int
    currency: str
    reference: str | None
    metadata: Mapping[str, str]
    card: CardView
    decline_code: str | None
    authorization_code: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentPage:
    data: Sequence[PaymentView]
    has_more: bool


@dataclass(frozen=True, slots=True)
class PaymentFilter:
    limit: int
    starting_after: str | None
    status: PaymentStatus | None
    reference: str | None


class Views(Protocol):
    async def job(self, merchant_id: str, job_id: str) -> JobView | None: ...

    async def payment(self, merchant_id: str, payment_id: str) -> PaymentView | None: ...

    async def payments(self, merchant_id: str, page: PaymentFilter) -> PaymentPage:
        """Newest first; `starting_after` is exclusive; `has_more` says if a next page exists."""
        ...


@dataclass(frozen=True, slots=True)
class GetJob(Query[Result[JobView, NotFound]]):
    merchant_id: str
    job_id: str


@dataclass(frozen=True, slots=True)
class GetPayment(Query[Result[PaymentView, NotFound]]):
    merchant_id: str
    payment_id: str


@dataclass(frozen=True, slots=True)
class ListPayments(Query[Result[PaymentPage, ValidationFailed]]):
    """Raw query parameters as the client sent them; the handler validates them all."""

    merchant_id: str
    limit: str | None = None
    starting_after: str | None = None
    status: str | None = None
    reference: str | None = None


def plausible_id(value: str) -> bool:
    """Ids are short printable ASCII: anything else cannot exist and is not looked up
    (PostgreSQL refuses a NUL in text outright)."""
    return 1 <= len(value) <= MAX_ID and value.isascii() and value.isprintable()


async def get_job(query: GetJob, *, views: Views) -> Result[JobView, NotFound]:
    if not plausible_id(query.job_id):
        return Err(NotFound("job"))
    view = await views.job(query.merchant_id, query.job_id)
    return Ok(view) if view else Err(NotFound("job"))


async def get_payment(query: GetPayment, *, views: Views) -> Result[PaymentView, NotFound]:
    if not plausible_id(query.payment_id):
        return Err(NotFound("payment"))
    view = await views.payment(query.merchant_id, query.payment_id)
    return Ok(view) if view else Err(NotFound("payment"))


async def list_payments(
    query: ListPayments, *, views: Views
) -> Result[PaymentPage, ValidationFailed]:
    match parse_filter(query):
        case Ok(page):
            return Ok(await views.payments(query.merchant_id, page))
        case Err(error):
            return Err(error)


def parse_filter(query: ListPayments) -> Result[PaymentFilter, ValidationFailed]:
    errors: list[FieldError] = []
    limit = DEFAULT_PAGE
    if query.limit is not None:
        digits = query.limit.isascii() and query.limit.isdigit() and len(query.limit) <= 4
        limit = int(query.limit) if digits else 0
        if not 1 <= limit <= MAX_PAGE:
            errors.append(FieldError("limit", "validation_error", f"must be 1-{MAX_PAGE}"))
    status = None
    if query.status is not None:
        if query.status not in PaymentStatus.__members__.values():
            allowed = ", ".join(PaymentStatus)
            errors.append(FieldError("status", "validation_error", f"must be one of {allowed}"))
        else:
            status = PaymentStatus(query.status)
    cursor = query.starting_after
    if cursor is not None and not (
        cursor.startswith("pay_") and len(cursor) > 4 and plausible_id(cursor)
    ):
        errors.append(FieldError("starting_after", "validation_error", "must be a payment id"))
    reference = query.reference
    if reference is not None and (len(reference) > 50 or "\x00" in reference):
        message = "must be at most 50 characters, without NUL"
        errors.append(FieldError("reference", "validation_error", message))
    if errors:
        return Err(ValidationFailed(tuple(errors)))
    return Ok(PaymentFilter(limit, cursor, status, query.reference))
