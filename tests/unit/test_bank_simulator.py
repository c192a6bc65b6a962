"""The bank simulator app, in process: every test card, idempotency, the ledger, webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar

from gateway.adapters.bank_http import in_process_client
from gateway.adapters.bank_simulator import create_simulator_app
from tests.integration.base_bank import ScriptedBank, serving

SECRET = "whsec_bank_test"


def charge(card: str = "4242424242424242", **changes: Any) -> dict[str, Any]:
    return {
        "card_number": card,
        "expiry_date": "12/2031",
        "currency": "GBP",
        "amount": 1050,
        "cvv": "987",
    } | changes


async def pay(client: httpx.AsyncClient, key: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/payments", json=body, headers={"Idempotency-Key": key})


async def ledger(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    rows = (await client.get("/ledger")).json()["payments"]
    return {row["idempotency_key"]: row for row in rows}


@pytest.fixture
async def bank() -> AsyncIterator[httpx.AsyncClient]:
    app = create_simulator_app(latency_ms=0, hang_s=0.3)
    async with in_process_client(app) as client:  # no callbacks here: no lifespan needed
        yield client


@asynccontextmanager
async def started(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client that calls it in process."""
    async with app.lifespan(), in_process_client(app) as client:
        yield client


@pytest.mark.parametrize(
    "card", ["4242424242424242", "5555555555554444", "378282246310005", "4111111111111111"]
)
async def test_ordinary_cards_are_authorized_with_a_six_character_code(
    bank: httpx.AsyncClient, card: str
) -> None:
    response = await pay(bank, "key-1", charge(card))

    assert response.status_code == 200
    assert response.json()["authorized"] is True
    assert re.fullmatch(r"[A-Z0-9]{6}", response.json()["authorization_code"])


@pytest.mark.parametrize(
    ("card", "code"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
    ],
)
async def test_decline_cards_are_declined_with_their_code(
    bank: httpx.AsyncClient, card: str, code: str
) -> None:
    response = await pay(bank, "key-1", charge(card))

    assert response.status_code == 200
    assert response.json() == {"authorized": False, "authorization_code": "", "decline_code": code}
    assert (await ledger(bank))["key-1"]["outcome"] == "declined"


async def test_failing_card_answers_503_every_time_and_is_never_found(
    bank: httpx.AsyncClient,
) -> None:
    statuses = [(await pay(bank, "key-1", charge("4000000000000119"))).status_code for _ in "abc"]

    assert statuses == [503, 503, 503]
    assert (await bank.get("/payments/key-1")).status_code == 404
    row = (await ledger(bank))["key-1"]
    assert (row["outcome"], row["calls"]) == ("failed", 3)


async def test_dropping_card_authorizes_then_breaks_the_first_connection(
    bank: httpx.AsyncClient,
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await pay(bank, "key-1", charge("4000000000003022"))

    looked_up = await bank.get("/payments/key-1")
    again = await pay(bank, "key-1", charge("4000000000003022"))

    assert looked_up.status_code == 200
    assert looked_up.json()["authorized"] is True
    assert again.json() == looked_up.json()
    row = (await ledger(bank))["key-1"]
    assert (row["outcome"], row["calls"]) == ("authorized", 2)


async def test_hanging_card_authorizes_the_retry_and_the_woken_first_call_charges_nothing(
    bank: httpx.AsyncClient,
) -> None:
    first = asyncio.create_task(pay(bank, "key-1", charge("4000000000003030")))
    await asyncio.sleep(0.05)

    during_hang = await bank.get("/payments/key-1")
    retry = await pay(bank, "key-1", charge("4000000000003030"))
    woken = await first

    assert during_hang.status_code == 404
    assert retry.status_code == 200
    assert retry.json()["authorized"] is True
    assert woken.json() == retry.json()
    assert (await bank.get("/payments/key-1")).json() == retry.json()
    assert (await ledger(bank))["key-1"]["calls"] == 2


async def test_same_key_twice_gives_the_same_answer_and_charges_once(
    bank: httpx.AsyncClient,
) -> None:
    first = await pay(bank, "key-1", charge())
    second = await pay(bank, "key-1", charge())

    assert second.status_code == first.status_code == 200
    assert second.json() == first.json()
    assert await ledger(bank) == {
        "key-1": {
            "idempotency_key": "key-1",
            "amount": 1050,
            "currency": "GBP",
            "last4": "4242",
            "outcome": "authorized",
            "calls": 2,
        }
    }


async def test_same_key_with_another_request_is_refused(bank: httpx.AsyncClient) -> None:
    await pay(bank, "key-1", charge())

    response = await pay(bank, "key-1", charge(amount=2000))

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error_message"]
    assert (await ledger(bank))["key-1"]["amount"] == 1050


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in charge().items() if k != "cvv"},
        charge(card_number="4242-4242-4242-4242"),
        charge(card_number=4242424242424242),
        charge(expiry_date="12/31"),
        charge(expiry_date="13/2031"),
        charge(expiry_date="2031-12"),
        charge(amount=0),
        charge(amount=-5),
        charge(amount="1050"),
        charge(amount=10.5),
        charge(amount=True),
        charge(currency="gbp"),
        charge(cvv="12"),
        [charge()],
    ],
)
async def test_malformed_requests_are_answered_400_and_not_recorded(
    bank: httpx.AsyncClient, body: Any
) -> None:
    response = await bank.post("/payments", json=body, headers={"Idempotency-Key": "key-1"})

    assert response.status_code == 400
    assert response.json()["error_message"]
    assert await ledger(bank) == {}


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": ""}, {"Idempotency-Key": "a" * 256}])
async def test_a_missing_or_invalid_idempotency_key_is_answered_400(
    bank: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await bank.post("/payments", json=charge(), headers=headers)

    assert response.status_code == 400


async def test_a_body_that_is_not_json_is_answered_400(bank: httpx.AsyncClient) -> None:
    response = await bank.post("/payments", content=b"{", headers={"Idempotency-Key": "k"})

    assert response.status_code == 400
    assert response.json()["error_message"]


async def test_lookup_of_an_unknown_key_is_404(bank: httpx.AsyncClient) -> None:
    response = await bank.get("/payments/nobody")

    assert response.status_code == 404
    assert response.json()["error_message"]


async def test_lookup_answers_what_the_post_answered(bank: httpx.AsyncClient) -> None:
    posted = await pay(bank, "pay_01/x", charge("4000000000009995"))

    looked_up = await bank.get("/payments/pay_01%2Fx")

    assert (looked_up.status_code, looked_up.json()) == (posted.status_code, posted.json())


async def test_the_ledger_keeps_no_card_number_or_cvv(bank: httpx.AsyncClient) -> None:
    await pay(bank, "key-1", charge("5555555555554444", cvv="864"))

    text = (await bank.get("/ledger")).text

    assert "5555555555554444" not in text
    assert "864" not in text
    assert (await ledger(bank))["key-1"]["last4"] == "4444"


async def test_latency_is_honoured_before_each_answer() -> None:
    async with started(create_simulator_app(latency_ms=150)) as client:
        began = time.perf_counter()
        await pay(client, "key-1", charge())
        await pay(client, "key-1", charge())

        assert time.perf_counter() - began >= 0.3


async def test_two_apps_keep_separate_ledgers() -> None:
    async with (
        started(create_simulator_app(latency_ms=0)) as one,
        started(create_simulator_app(latency_ms=0)) as other,
    ):
        await pay(one, "key-1", charge())

        assert (await other.get("/payments/key-1")).status_code == 404
        assert await ledger(other) == {}


def verify(headers: dict[str, str], body: bytes) -> bool:
    parts = dict(part.split("=", 1) for part in headers["bank-signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    fresh = abs(time.time() - int(parts["t"])) < 60
    return fresh and hmac.compare_digest(parts["v1"], expected.hexdigest())


async def settle_by_webhook(card: str, receiver: ScriptedBank) -> tuple[httpx.Response, Any]:
    async with serving(receiver) as url:
        app = create_simulator_app(
            latency_ms=0,
            webhook_url=f"{url}/webhooks/bank",
            webhook_secret=SECRET,
            webhook_delay_s=0.2,
            webhook_backoff_s=0.05,
        )
        async with started(app) as client:
            expected = len(receiver.script)
            posted = await pay(client, "key-1", charge(card))
            pending = await client.get("/payments/key-1")
            async with asyncio.timeout(5):
                await receiver.until_received(expected)
            settled = await client.get("/payments/key-1")
    assert (posted.status_code, posted.json()) == (202, {"status": "pending"})
    assert pending.status_code == 202
    return settled, receiver.received


async def test_pending_card_posts_a_signed_authorized_webhook() -> None:
    receiver = ScriptedBank([(200, b"")])

    settled, received = await settle_by_webhook("4000000000003006", receiver)

    [webhook] = received
    event = webhook.json()
    assert (webhook.method, webhook.path) == ("POST", "/webhooks/bank")
    assert verify(webhook.headers, webhook.body)
    assert event["id"].startswith("evt_")
    assert event["type"] == "payment.authorized"
    assert event["idempotency_key"] == "key-1"
    assert settled.json() == {"authorized": True, "authorization_code": event["authorization_code"]}


async def test_pending_card_posts_a_signed_declined_webhook_with_do_not_honor() -> None:
    receiver = ScriptedBank([(200, b"")])

    settled, received = await settle_by_webhook("4000000000003014", receiver)

    [webhook] = received
    assert verify(webhook.headers, webhook.body)
    assert webhook.json()["type"] == "payment.declined"
    assert webhook.json()["decline_code"] == "do_not_honor"
    assert settled.json()["decline_code"] == "do_not_honor"


async def test_a_refused_webhook_is_retried_with_the_same_event_id() -> None:
    receiver = ScriptedBank([(500, b""), (503, b""), (200, b"")])

    _, received = await settle_by_webhook("4000000000003006", receiver)

    assert len(received) == 3
    assert len({webhook.json()["id"] for webhook in received}) == 1
    assert all(verify(webhook.headers, webhook.body) for webhook in received)


async def test_silent_pending_card_never_calls_back_but_the_lookup_answers_authorized() -> None:
    receiver = ScriptedBank([])
    async with serving(receiver) as url:
        app = create_simulator_app(
            latency_ms=0, webhook_url=url, webhook_secret=SECRET, webhook_delay_s=0.01
        )
        async with started(app) as client:
            posted = await pay(client, "key-1", charge("4000000000003048"))
            await asyncio.sleep(0.2)
            looked_up = await client.get("/payments/key-1")

    assert posted.status_code == 202
    assert looked_up.status_code == 200
    assert looked_up.json()["authorized"] is True
    assert receiver.received == []


async def test_shutdown_cancels_callbacks_still_waiting() -> None:
    app = create_simulator_app(
        latency_ms=0, webhook_url="http://127.0.0.1:9", webhook_secret=SECRET, webhook_delay_s=30
    )
    began = time.perf_counter()
    async with started(app) as client:
        await pay(client, "key-1", charge("4000000000003006"))

    assert time.perf_counter() - began < 2
