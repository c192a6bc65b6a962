"""HttpBank against the bank simulator served by a real uvicorn on a free localhost port,
against the base Checkout challenge protocol, and in process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gateway.adapters.bank_http import (
    AiohttpWire,
    HttpBank,
    HttpxWire,
    in_process_client,
    network_wire,
)
from gateway.adapters.bank_simulator import create_simulator_app
from gateway.application.bank import (
    Authorized,
    BankRequest,
    Declined,
    Pending,
    Rejected,
    Unavailable,
    Unknown,
)
from tests.integration.base_bank import BaseBank, ScriptedBank, serving

HANG_S = 0.75


def request(card: str = "4242424242424242", key: str = "pay_1", **changes: Any) -> BankRequest:
    fields: dict[str, Any] = {
        "idempotency_key": key,
        "card_number": card,
        "expiry_month": 4,
        "expiry_year": 2031,
        "cvv": "987",
        "amount": 1050,
        "currency": "GBP",
    }
    return BankRequest(**(fields | changes))


@dataclass
class Calls:
    labels: list[str] = field(default_factory=list)

    def __call__(self, label: str, seconds: float) -> None:
        assert seconds >= 0
        self.labels.append(label)


@dataclass
class Bank:
    url: str
    wire: AiohttpWire
    calls: Calls

    def http_bank(self, **options: Any) -> HttpBank:
        settings = {"timeout_s": 1.0, "attempts": 3, "backoff_s": 0.01} | options
        return HttpBank(self.wire, observe=self.calls, **settings)

    async def ledger(self, key: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url) as client:
            rows = (await client.get("/ledger")).json()["payments"]
        [row] = [row for row in rows if row["idempotency_key"] == key]
        return dict(row)


@pytest.fixture
async def simulator() -> AsyncIterator[Bank]:
    app = create_simulator_app(latency_ms=0, hang_s=HANG_S, webhook_delay_s=0.05)
    async with serving(app) as url, network_wire(url, timeout_s=1.0) as wire:
        yield Bank(url, wire, Calls())


async def test_an_ordinary_card_is_authorized(simulator: Bank) -> None:
    outcome = await simulator.http_bank().authorize(request())

    assert isinstance(outcome, Authorized)
    assert len(outcome.authorization_code) == 6
    assert simulator.calls.labels == ["authorized"]


async def test_a_decline_card_is_declined_with_its_code(simulator: Bank) -> None:
    outcome = await simulator.http_bank().authorize(request("4000000000009995"))

    assert outcome == Declined("insufficient_funds")


async def test_a_request_the_bank_refuses_is_rejected_without_retry(simulator: Bank) -> None:
    outcome = await simulator.http_bank().authorize(request(currency="gbp"))

    assert isinstance(outcome, Rejected)
    assert "currency" in outcome.message
    assert simulator.calls.labels == ["rejected"]


async def test_a_failing_bank_is_unavailable_after_the_configured_attempts(
    simulator: Bank,
) -> None:
    outcome = await simulator.http_bank(attempts=4).authorize(request("4000000000000119"))

    assert isinstance(outcome, Unavailable)
    assert "4 attempts" in outcome.message
    assert "4000000000000119" not in outcome.message
    assert simulator.calls.labels == ["server_error"] * 4
    assert (await simulator.ledger("pay_1"))["calls"] == 4


async def test_a_dropped_answer_is_settled_by_the_lookup_and_charged_once(
    simulator: Bank,
) -> None:
    outcome = await simulator.http_bank().authorize(request("4000000000003022"))

    assert isinstance(outcome, Authorized)
    assert simulator.calls.labels == ["connection_error", "authorized"]
    row = await simulator.ledger("pay_1")
    assert (row["outcome"], row["calls"]) == ("authorized", 1)


async def test_a_timed_out_call_is_retried_and_authorized_once(simulator: Bank) -> None:
    bank = simulator.http_bank(timeout_s=0.25)

    outcome = await bank.authorize(request("4000000000003030"))
    await asyncio.sleep(HANG_S)  # the hung first call wakes up

    assert isinstance(outcome, Authorized)
    assert simulator.calls.labels == ["timeout", "unknown", "authorized"]
    assert await bank.lookup("pay_1") == outcome
    row = await simulator.ledger("pay_1")
    assert (row["outcome"], row["calls"]) == ("authorized", 2)


@pytest.mark.parametrize("card", ["4000000000003006", "4000000000003014", "4000000000003048"])
async def test_pending_cards_are_pending(simulator: Bank, card: str) -> None:
    outcome = await simulator.http_bank().authorize(request(card))

    assert outcome == Pending()


async def test_lookup_of_a_silent_pending_card_is_authorized(simulator: Bank) -> None:
    bank = simulator.http_bank()
    await bank.authorize(request("4000000000003048"))

    assert isinstance(await bank.lookup("pay_1"), Authorized)


async def test_lookup_of_an_unknown_key_is_unknown(simulator: Bank) -> None:
    assert await simulator.http_bank().lookup("pay_never_seen") == Unknown()


async def test_lookup_of_a_declined_payment_is_declined(simulator: Bank) -> None:
    bank = simulator.http_bank()
    await bank.authorize(request("4000000000000002", key="pay/2"))

    assert await bank.lookup("pay/2") == Declined("card_declined")


async def test_the_overall_deadline_cuts_retries_short(simulator: Bank) -> None:
    bank = simulator.http_bank(attempts=50, backoff_s=0.05, deadline_s=0.3)
    began = time.perf_counter()

    outcome = await bank.authorize(request("4000000000000119"))

    assert isinstance(outcome, Unavailable)
    assert time.perf_counter() - began < 1.0
    assert 1 < len(simulator.calls.labels) < 50


async def test_an_unreachable_bank_is_unavailable() -> None:
    calls = Calls()
    async with serving(BaseBank()) as url:
        pass  # the port is free again: nothing listens there any more
    async with network_wire(url, timeout_s=0.25) as client:
        bank = HttpBank(client, timeout_s=0.25, attempts=2, backoff_s=0.01, observe=calls)

        outcome = await bank.authorize(request())

    assert isinstance(outcome, Unavailable)
    assert calls.labels == ["connection_error", "connection_error"]


async def test_a_malformed_200_is_retried() -> None:
    scripted = ScriptedBank(
        [(200, b"<html>"), (200, b'{"authorized": true, "authorization_code": "X1"}')]
    )
    calls = Calls()
    async with serving(scripted) as url, network_wire(url, timeout_s=1.0) as client:
        bank = HttpBank(client, attempts=3, backoff_s=0.01, observe=calls)

        outcome = await bank.authorize(request())

    assert outcome == Authorized("X1")
    assert calls.labels == ["malformed", "authorized"]


async def test_a_decline_without_a_code_is_card_declined() -> None:
    scripted = ScriptedBank([(200, b'{"authorized": false, "authorization_code": ""}')])
    async with serving(scripted) as url, network_wire(url, timeout_s=1.0) as client:
        outcome = await HttpBank(client).authorize(request())

    assert outcome == Declined("card_declined")


@pytest.fixture
async def base_bank() -> AsyncIterator[tuple[BaseBank, HttpBank]]:
    bank = BaseBank()
    async with serving(bank) as url, network_wire(url, timeout_s=1.0) as client:
        yield bank, HttpBank(client, timeout_s=1.0, attempts=3, backoff_s=0.01)


async def test_base_bank_authorizes_an_odd_card_from_the_challenge_payload(
    base_bank: tuple[BaseBank, HttpBank],
) -> None:
    bank, http_bank = base_bank

    outcome = await http_bank.authorize(request("2222405343248877"))

    assert isinstance(outcome, Authorized)
    [call] = bank.received
    assert call.headers["idempotency-key"] == "pay_1"
    assert call.json() == {
        "card_number": "2222405343248877",
        "expiry_date": "04/2031",
        "currency": "GBP",
        "amount": 1050,
        "cvv": "987",
    }


async def test_base_bank_declines_an_even_card(base_bank: tuple[BaseBank, HttpBank]) -> None:
    _, http_bank = base_bank

    assert await http_bank.authorize(request("2222405343248112")) == Declined("card_declined")


async def test_base_bank_failing_on_a_zero_card_is_unavailable(
    base_bank: tuple[BaseBank, HttpBank],
) -> None:
    bank, http_bank = base_bank

    outcome = await http_bank.authorize(request("2222405343248870"))

    assert isinstance(outcome, Unavailable)
    assert len(bank.received) == 3


async def test_base_bank_has_no_lookup(base_bank: tuple[BaseBank, HttpBank]) -> None:
    _, http_bank = base_bank

    assert await http_bank.lookup("pay_1") == Unknown()


async def test_in_process_hang_is_cut_by_the_timeout_and_the_retry_authorized() -> None:
    app = create_simulator_app(latency_ms=0, hang_s=30)
    calls = Calls()
    async with in_process_client(app) as client:
        wire = HttpxWire(client)
        bank = HttpBank(wire, timeout_s=0.1, attempts=3, backoff_s=0.01, observe=calls)
        began = time.perf_counter()

        outcome = await bank.authorize(request("4000000000003030"))

    assert isinstance(outcome, Authorized)
    assert time.perf_counter() - began < 1.0
    assert calls.labels == ["timeout", "unknown", "authorized"]


async def test_in_process_dropped_answer_is_settled_by_the_lookup() -> None:
    app = create_simulator_app(latency_ms=0)
    calls = Calls()
    async with in_process_client(app) as client:
        outcome = await HttpBank(HttpxWire(client), observe=calls).authorize(
            request("4000000000003022")
        )

    assert isinstance(outcome, Authorized)
    assert calls.labels == ["connection_error", "authorized"]
