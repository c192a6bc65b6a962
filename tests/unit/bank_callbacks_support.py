"""Helpers for the tests of the bank's callbacks and the pending sweep."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.domain import signature
from gateway.domain.commands import (
    MakePayment,
    PaymentAccepted,
    ReceiveBankCallback,
    RequestPayment,
)
from gateway.domain.result import Ok
from tests.unit.fakes import BANK_SECRET, Gateway, valid_body


def bank_event(payment_id: str, kind: str = "authorized", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"evt_{kind}_{payment_id}",
        "type": f"payment.{kind}",
        "idempotency_key": payment_id,
        "authorization_code": "CB0001" if kind == "authorized" else "",
        "decline_code": None if kind == "authorized" else "do_not_honor",
    }
    return event | fields


def signed(
    body: dict[str, Any] | bytes,
    at: datetime,
    *,
    secrets: tuple[str, ...] = (BANK_SECRET,),
    offset_s: int = 0,
) -> ReceiveBankCallback:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    header = signature.sign(raw, secrets, int(at.timestamp()) + offset_s)
    return ReceiveBankCallback(raw, header)


async def accepted_payment(gateway: Gateway, key: str = "key-1") -> MakePayment:
    result = await gateway.mediator.send(RequestPayment("mer_1", key, valid_body()))
    assert isinstance(result, Ok)
    assert isinstance(result.value, PaymentAccepted)
    job = result.value.job
    return MakePayment(job.payment_id, job.id, job.merchant_id)


async def pending_payment(gateway: Gateway, key: str = "key-1") -> MakePayment:
    """A payment the bank answered `202` for (the gateway's bank must answer `Pending`)."""
    cmd = await accepted_payment(gateway, key)
    await gateway.mediator.send(cmd)
    assert cmd.payment_id in gateway.store.pending_payments
    return cmd
