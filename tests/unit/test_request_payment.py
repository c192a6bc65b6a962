"""`RequestPayment` through the real mediator: validation, storage and idempotency."""

from __future__ import annotations

import asyncio

import pytest

from gateway.application.ports import KeyLocks
from gateway.domain.commands import MakePayment, PaymentAccepted, RequestPayment
from gateway.domain.errors import (
    IdempotencyKeyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    ValidationFailed,
)
from gateway.domain.model import JobStatus, PaymentStatus
from gateway.domain.result import Err, Ok
from gateway.domain.value_objects import Reference
from tests.unit.fakes import Gateway, NoLocks, valid_body


async def request(
    gateway: Gateway, body: object, key: str = "key-1", merchant: str = "mer_1"
) -> object:
    return await gateway.mediator.send(RequestPayment(merchant, key, body))


def accepted(result: object) -> PaymentAccepted:
    assert isinstance(result, Ok), result
    assert isinstance(result.value, PaymentAccepted)
    return result.value


async def test_accepted_payment_writes_everything_in_one_commit() -> None:
    gateway = Gateway()
    result = accepted(await request(gateway, valid_body()))

    store = gateway.store
    assert store.commits == 1
    job = store.jobs[result.job.id]
    payment = store.payments[job.payment_id]
    assert not result.replayed
    assert result.job == job
    assert (job.status, job.merchant_id, job.created_at) == (
        JobStatus.CREATED,
        "mer_1",
        gateway.clock.now(),
    )
    assert payment.status is PaymentStatus.PENDING
    assert (payment.merchant_id, payment.money.minor_units) == ("mer_1", 1050)
    assert (payment.card.bin, payment.card.last4, payment.card.scheme) == ("424242", "4242", "visa")
    assert payment.reference == Reference("ORD-001")
    assert dict(payment.metadata.entries) == {"customer": "c_42"}
    assert store.outbox == [MakePayment(payment.id, job.id, "mer_1")]
    assert list(store.cards) == [payment.id]
    record = store.idempotency[("mer_1", "key-1")]
    assert (record.job_id, record.payment_id) == (job.id, payment.id)


async def test_card_data_is_stored_sealed_and_opens_for_its_payment_only() -> None:
    gateway = Gateway()
    job = accepted(await request(gateway, valid_body(card_cvv="987"))).job

    sealed = gateway.store.cards[job.payment_id]
    assert b"4242424242424242" not in sealed
    assert b"987" not in sealed
    opened = gateway.vault.open(job.payment_id, sealed)
    assert isinstance(opened, Ok)
    assert (opened.value.number.digits, opened.value.cvv.digits) == ("4242424242424242", "987")
    assert isinstance(gateway.vault.open("pay_other", sealed), Err)


async def test_idempotency_record_keeps_a_keyed_fingerprint_not_the_body() -> None:
    gateway = Gateway()
    accepted(await request(gateway, valid_body()))
    record = gateway.store.idempotency[("mer_1", "key-1")]
    assert len(record.fingerprint) == 64
    assert "4242" not in repr(record)


async def test_every_invalid_field_is_reported_and_nothing_is_stored() -> None:
    gateway = Gateway()
    body = valid_body(amount=0, currency="usd", card_number="1234", card_cvv="12")
    result = await request(gateway, body)

    assert isinstance(result, Err)
    assert isinstance(result.error, ValidationFailed)
    assert {(e.param, e.code) for e in result.error.errors} == {
        ("amount", "amount_invalid"),
        ("currency", "currency_invalid"),
        ("card.number", "card_number_invalid"),
        ("card.cvv", "cvv_invalid"),
    }
    assert gateway.store.commits == 0
    assert gateway.store.payments == {}
    assert gateway.store.idempotency == {}


async def test_a_rejected_request_leaves_the_key_free_for_a_corrected_one() -> None:
    gateway = Gateway()
    assert isinstance(await request(gateway, valid_body(amount=-1)), Err)
    result = accepted(await request(gateway, valid_body()))
    assert not result.replayed


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "tab\there"])
async def test_an_invalid_idempotency_key_is_refused_before_anything_else(key: str) -> None:
    gateway = Gateway()
    result = await request(gateway, {"amount": "broken"}, key=key)
    assert isinstance(result, Err)
    assert isinstance(result.error, IdempotencyKeyInvalid)
    assert gateway.store.commits == 0


async def test_the_same_key_and_body_replays_the_original_job() -> None:
    gateway = Gateway()
    first = accepted(await request(gateway, valid_body()))
    gateway.clock.advance(60)
    again = accepted(await request(gateway, valid_body()))

    assert again.replayed
    assert again.job == first.job
    assert len(gateway.store.payments) == 1
    assert gateway.store.commits == 1
    assert len(gateway.store.outbox) == 1


async def test_replay_ignores_key_order_and_white_space_of_the_body() -> None:
    gateway = Gateway()
    body = valid_body()
    accepted(await request(gateway, body))
    reordered = dict(reversed(list(body.items())))
    assert accepted(await request(gateway, reordered)).replayed


async def test_the_same_key_with_another_body_is_refused_as_reused() -> None:
    gateway = Gateway()
    accepted(await request(gateway, valid_body()))
    result = await request(gateway, valid_body(amount=1051))
    assert result == Err(IdempotencyKeyReused())
    assert len(gateway.store.payments) == 1


async def test_two_merchants_with_one_key_get_two_payments() -> None:
    gateway = Gateway()
    first = accepted(await request(gateway, valid_body(), merchant="mer_1"))
    second = accepted(await request(gateway, valid_body(), merchant="mer_2"))

    assert (first.replayed, second.replayed) == (False, False)
    assert first.job.payment_id != second.job.payment_id
    owners = sorted(payment.merchant_id for payment in gateway.store.payments.values())
    assert owners == ["mer_1", "mer_2"]


@pytest.mark.parametrize("locks", [None, NoLocks()], ids=["one-process", "many-processes"])
async def test_concurrent_requests_with_one_key_make_exactly_one_payment(
    locks: KeyLocks | None,
) -> None:
    gateway = Gateway() if locks is None else Gateway(locks=locks)
    results = await asyncio.gather(*(request(gateway, valid_body()) for _ in range(8)))

    assert len(gateway.store.payments) == 1
    assert len(gateway.store.outbox) == 1
    fresh = [r for r in results if isinstance(r, Ok) and not r.value.replayed]
    assert len(fresh) == 1
    assert any(isinstance(result, Err) for result in results), "the requests overlapped"
    job = fresh[0].value.job
    for result in results:
        match result:
            case Ok(answer):
                assert answer.job.id == job.id
            case Err(error):
                assert error == IdempotencyKeyInProgress()


async def test_a_key_held_by_a_running_request_is_reported_in_progress() -> None:
    gateway = Gateway()
    async with gateway.locks.hold("mer_1:key-1") as held:
        assert held
        result = await request(gateway, valid_body())
    assert result == Err(IdempotencyKeyInProgress())
    assert gateway.store.commits == 0
    assert not accepted(await request(gateway, valid_body())).replayed
