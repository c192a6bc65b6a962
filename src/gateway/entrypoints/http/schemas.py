"""The HTTP contract as msgspec Structs, and how read models become them.

Requests are not parsed into Structs: the domain validates the raw JSON so that every
invalid field is reported at once (msgspec would stop at the first).
"""

from __future__ import annotations

from datetime import UTC, datetime

from msgspec import Struct, field

from gateway.application.queries import JobView, PaymentView
from gateway.domain.model import Job


class FieldProblem(Struct):
    param: str
    code: str
    message: str


class Problem(Struct, omit_defaults=True):
    """RFC 9457 problem details; `errors` lists every invalid field, when there are any."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    request_id: str
    errors: list[FieldProblem] | None = None


class JobError(Struct):
    code: str
    message: str


class JobLinks(Struct):
    self_: str = field(name="self")
    payment: str


class JobBody(Struct):
    id: str
    type: str
    status: str
    payment_id: str
    error: JobError | None
    created_at: datetime
    completed_at: datetime | None
    links: JobLinks

    @classmethod
    def of_job(cls, job: Job) -> JobBody:
        return cls.of_view(JobView.of(job))

    @classmethod
    def of_view(cls, job: JobView) -> JobBody:
        error = None
        if job.error_code is not None:
            error = JobError(job.error_code, job.error_message or "")
        return cls(
            id=job.id,
            type="payment",
            status=job.status,
            payment_id=job.payment_id,
            error=error,
            created_at=timestamp(job.created_at),
            completed_at=timestamp(job.completed_at) if job.completed_at else None,
            links=JobLinks(f"/jobs/{job.id}", f"/payments/{job.payment_id}"),
        )


class CardBody(Struct):
    scheme: str
    bin: str
    last4: str
    expiry_month: int
    expiry_year: int
    holder_name: str | None


class PaymentLinks(Struct):
    self_: str = field(name="self")


class PaymentBody(Struct):
    id: str
    status: str
    amount: int
    currency: str
    reference: str | None
    metadata: dict[str, str]
    card: CardBody
    decline_code: str | None
    authorization_code: str | None
    created_at: datetime
    updated_at: datetime
    links: PaymentLinks

    @classmethod
    def of_view(cls, payment: PaymentView) -> PaymentBody:
        card = payment.card
        return cls(
            id=payment.id,
            status=payment.status,
            amount=payment.amount,
            currency=payment.currency,
            reference=payment.reference,
            metadata=dict(payment.metadata),
            card=CardBody(
                card.scheme,
                card.bin,
                card.last4,
                card.expiry_month,
                card.expiry_year,
                card.holder_name,
            ),
            decline_code=payment.decline_code,
            authorization_code=payment.authorization_code,
            created_at=timestamp(payment.created_at),
            updated_at=timestamp(payment.updated_at),
            links=PaymentLinks(f"/payments/{payment.id}"),
        )


class PaymentList(Struct):
    data: list[PaymentBody]
    has_more: bool
    next: str | None


class Status(Struct):
    status: str


def timestamp(moment: datetime) -> datetime:
    """UTC, to the second: msgspec writes it as RFC 3339 with a `Z` (`2026-11-23T18:00:00Z`)."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(microsecond=0)
