"""`ReceiveBankCallback` through the real mediator: signature, shape, idempotency, races."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from gateway.application.bank import BankOutcome, BankRequest, Pending
from gateway.domain import signature
from gateway.domain.commands import BankCallbackAccepted, ReceiveBankCallback
from gateway.domain.errors import (
    NotFound,
    PaymentAlreadyFinal,
    SignatureRejected,
    ValidationFailed,
)
from gateway.domain.model import JobStatus, PaymentStatus
from gateway.domain.result import Err, Ok
from tests.unit.bank_callbacks_support import (
    accepted_payment,
    bank_event,
    pending_payment,
    signed,
)
from tests.unit.fakes import FakeBank, Gateway


def pending_gateway(**fields: object) -> Gateway:
    return Gateway(bank=FakeBank(Pending()), **fields)  # type: ignore[arg-type]


def accepted(result: object, outcome: str) -> BankCallbackAccepted:
    assert isinstance(result, Ok), result
    assert isinstance(result.value, BankCallbackAccepted)
    assert result.value.outcome == outcome
    return result.value


async def test_a_signed_authorization_settles_the_pending_payment_and_completes_its_job() -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    gateway.clock.advance(1)
    event = bank_event(cmd.payment_id)

    result = await gateway.mediator.send(signed(event, gateway.clock.now()))

    accepted(result, "applied")
    payment, job = gateway.store.payments[cmd.payment_id], gateway.store.jobs[cmd.job_id]
    assert (payment.status, payment.authorization_code) == (PaymentStatus.AUTHORIZED, "CB0001")
    assert (job.status, job.completed_at) == (JobStatus.COMPLETED, gateway.clock.now())
    assert cmd.payment_id not in gateway.store.pending_payments
    record = gateway.store.bank_callbacks[event["id"]]
    assert (record.payment_id, record.type, record.outcome) == (
        cmd.payment_id,
        "payment.authorized",
        "applied",
    )
    assert record.signature_timestamp == gateway.clock.now().replace(microsecond=0)


ABSENT = object()


@pytest.mark.parametrize(
    ("sent", "decline_code"),
    [("do_not_honor", "do_not_honor"), (None, "card_declined"), ("", "card_declined"),
     (ABSENT, "card_declined")],
    ids=["with_code", "null_code", "empty_code", "no_code"],
)  # fmt: skip
async def test_a_signed_decline_declines_the_payment(sent: object, decline_code: str) -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    event = bank_event(cmd.payment_id, "declined", decline_code=sent)
    if sent is ABSENT:
        del event["decline_code"]

    accepted(await gateway.mediator.send(signed(event, gateway.clock.now())), "applied")

    payment = gateway.store.payments[cmd.payment_id]
    assert (payment.status, payment.decline_code) == (PaymentStatus.DECLINED, decline_code)
    assert gateway.store.jobs[cmd.job_id].status is JobStatus.COMPLETED


def assert_nothing_changed(gateway: Gateway, commits: int) -> None:
    assert gateway.store.commits == commits
    assert gateway.store.bank_callbacks == {}
    assert all(p.status is PaymentStatus.PENDING for p in gateway.store.payments.values())


async def test_a_forged_signature_is_rejected_and_nothing_is_stored() -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    commits = gateway.store.commits
    forged = signed(bank_event(cmd.payment_id), gateway.clock.now(), secrets=("guessed",))

    result = await gateway.mediator.send(forged)

    assert isinstance(result, Err)
    assert isinstance(result.error, SignatureRejected)
    assert_nothing_changed(gateway, commits)


async def test_a_missing_signature_is_rejected() -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    raw = json.dumps(bank_event(cmd.payment_id)).encode()

    result = await gateway.mediator.send(ReceiveBankCallback(raw, None))

    assert result == Err(SignatureRejected("the Bank-Signature header is missing"))


async def test_a_body_changed_after_signing_is_rejected() -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    good = signed(bank_event(cmd.payment_id), gateway.clock.now())
    tampered = good.raw_body.replace(b"authorized", b"declined")

    result = await gateway.mediator.send(ReceiveBankCallback(tampered, good.signature_header))

    assert isinstance(result, Err)
    assert isinstance(result.error, SignatureRejected)


async def test_without_a_configured_secret_every_callback_is_rejected() -> None:
    gateway = pending_gateway(bank_secrets=())
    cmd = await pending_payment(gateway)
    result = await gateway.mediator.send(signed(bank_event(cmd.payment_id), gateway.clock.now()))
    assert result == Err(SignatureRejected("no bank webhook secret is configured"))


@pytest.mark.parametrize("offset_s", [-301, 301, -3600])
async def test_a_timestamp_outside_the_tolerance_is_rejected(offset_s: int) -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    commits = gateway.store.commits
    stale = signed(bank_event(cmd.payment_id), gateway.clock.now(), offset_s=offset_s)

    result = await gateway.mediator.send(stale)

    assert result == Err(SignatureRejected("the timestamp is outside the tolerance"))
    assert_nothing_changed(gateway, commits)


@pytest.mark.parametrize("offset_s", [-300, 300])
async def test_a_timestamp_at_the_edge_of_the_tolerance_is_accepted(offset_s: int) -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    late = signed(bank_event(cmd.payment_id), gateway.clock.now(), offset_s=offset_s)
    accepted(await gateway.mediator.send(late), "applied")


@pytest.mark.parametrize(
    "signing", [("new",), ("old",), ("new", "old"), ("unrelated", "old")], ids=str
)
async def test_during_a_rotation_a_signature_by_any_current_secret_is_accepted(
    signing: tuple[str, ...],
) -> None:
    gateway = pending_gateway(bank_secrets=("new", "old"))
    cmd = await pending_payment(gateway)
    callback = signed(bank_event(cmd.payment_id), gateway.clock.now(), secrets=signing)
    accepted(await gateway.mediator.send(callback), "applied")


async def test_the_same_event_again_is_accepted_without_a_second_effect() -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    event = bank_event(cmd.payment_id)
    await gateway.mediator.send(signed(event, gateway.clock.now()))
    settled = gateway.store.payments[cmd.payment_id]
    gateway.clock.advance(60)
    contradicting = event | {"type": "payment.declined", "decline_code": "card_declined"}

    for body in (event, contradicting):
        accepted(await gateway.mediator.send(signed(body, gateway.clock.now())), "replayed")

    assert gateway.store.payments[cmd.payment_id] == settled
    assert [record.outcome for record in gateway.store.bank_callbacks.values()] == ["applied"]
    assert [type(e).__name__ for e in gateway.store.events] == ["PaymentAuthorized"]


async def test_another_event_with_the_same_outcome_is_a_recorded_duplicate() -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    await gateway.mediator.send(signed(bank_event(cmd.payment_id), gateway.clock.now()))
    again = bank_event(cmd.payment_id, id="evt_second", authorization_code="OTHER1")

    accepted(await gateway.mediator.send(signed(again, gateway.clock.now())), "duplicate")

    assert gateway.store.payments[cmd.payment_id].authorization_code == "CB0001"
    assert gateway.store.bank_callbacks["evt_second"].outcome == "duplicate"
    assert len(gateway.store.events) == 1


async def test_an_event_contradicting_a_final_payment_is_a_recorded_conflict() -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    await gateway.mediator.send(signed(bank_event(cmd.payment_id), gateway.clock.now()))
    settled = gateway.store.payments[cmd.payment_id]
    decline = bank_event(cmd.payment_id, "declined")

    result = await gateway.mediator.send(signed(decline, gateway.clock.now()))

    assert result == Err(PaymentAlreadyFinal("authorized"))
    assert gateway.store.payments[cmd.payment_id] == settled
    assert gateway.store.jobs[cmd.job_id].status is JobStatus.COMPLETED
    assert gateway.store.bank_callbacks[decline["id"]].outcome == "conflict"


async def test_an_event_for_an_unknown_payment_is_not_found_and_not_recorded() -> None:
    gateway = pending_gateway()
    await pending_payment(gateway)
    result = await gateway.mediator.send(signed(bank_event("pay_unknown"), gateway.clock.now()))
    assert result == Err(NotFound("payment"))
    assert gateway.store.bank_callbacks == {}


@pytest.mark.parametrize(
    ("raw", "params"),
    [
        (b"not json", ["body"]),
        (b"[1, 2]", ["body"]),
        (b'{"id": "a", "id": "b"}', ["body"]),
        (b"{}", ["id", "idempotency_key", "type"]),
        (
            b'{"id": 1, "type": "payment.refunded", "idempotency_key": ""}',
            ["id", "idempotency_key", "type"],
        ),
        (
            b'{"id": "e", "type": "payment.authorized", "idempotency_key": "p"}',
            ["authorization_code"],
        ),
        (
            b'{"id": "e", "type": "payment.declined", "idempotency_key": "p", "decline_code": 7}',
            ["decline_code"],
        ),
    ],
    ids=["not_json", "array", "duplicate_key", "empty", "wrong_types", "no_code", "int_code"],
)
async def test_a_signed_body_of_the_wrong_shape_is_invalid_with_every_field_reported(
    raw: bytes, params: list[str]
) -> None:
    gateway = pending_gateway()
    await pending_payment(gateway)
    commits = gateway.store.commits

    result = await gateway.mediator.send(signed(raw, gateway.clock.now()))

    assert isinstance(result, Err)
    assert isinstance(result.error, ValidationFailed)
    assert sorted(error.param for error in result.error.errors) == params
    assert gateway.store.commits == commits


class OvertakingBank(FakeBank):
    """Sends the callback before its own `202` answer gets back to the gateway."""

    def __init__(self, gateway_ref: list[Gateway]) -> None:
        super().__init__(Pending())
        self._gateway_ref = gateway_ref
        self.callback_result: object = None

    async def authorize(self, request: BankRequest) -> BankOutcome:
        gateway = self._gateway_ref[0]
        event = bank_event(request.idempotency_key)
        self.callback_result = await gateway.mediator.send(signed(event, gateway.clock.now()))
        return await super().authorize(request)


async def test_a_callback_that_overtakes_the_banks_202_wins_and_the_late_202_changes_nothing() -> (
    None
):
    ref: list[Gateway] = []
    bank = OvertakingBank(ref)
    gateway = Gateway(bank=bank)
    ref.append(gateway)
    cmd = await accepted_payment(gateway)

    result = await gateway.mediator.send(cmd)

    accepted(bank.callback_result, "applied")
    assert isinstance(result, Ok)
    assert result.value.status is PaymentStatus.AUTHORIZED
    assert gateway.store.payments[cmd.payment_id].status is PaymentStatus.AUTHORIZED
    assert gateway.store.jobs[cmd.job_id].status is JobStatus.COMPLETED
    assert gateway.store.pending_payments == {}
    assert cmd.payment_id not in gateway.store.cards
    assert [type(e).__name__ for e in gateway.store.events] == ["PaymentAuthorized"]


async def test_two_deliveries_of_one_event_at_once_apply_it_once() -> None:
    gateway = pending_gateway()
    cmd = await pending_payment(gateway)
    callback = signed(bank_event(cmd.payment_id), gateway.clock.now())

    results = await asyncio.gather(*(gateway.mediator.send(callback) for _ in range(3)))

    assert all(isinstance(result, Ok) for result in results)
    outcomes = sorted(result.value.outcome for result in results if isinstance(result, Ok))
    assert outcomes[0] == "applied"
    assert set(outcomes[1:]) <= {"replayed", "duplicate"}
    assert [type(e).__name__ for e in gateway.store.events] == ["PaymentAuthorized"]
    assert [r.outcome for r in gateway.store.bank_callbacks.values()] == ["applied"]


def test_the_signature_helper_used_by_these_tests_matches_the_simulators() -> None:
    from gateway.adapters.bank_simulator_webhooks import signature as simulator_signature

    raw, at = b'{"id": "evt_1"}', int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    assert signature.sign(raw, ["s"], at) == simulator_signature("s", at, raw)
