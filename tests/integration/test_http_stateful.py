"""A hypothesis state machine drives the HTTP API against a model of what it must hold.

Two merchants request payments (valid and invalid bodies, keys from a small pool), poll
jobs, replay requests, reuse keys with other bodies and read each other's resources. After
every step: one payment per (merchant, key) accepted, replays identical, reused keys 422,
another merchant's resources 404, every error problem+json, and no response ever shows a
card number or a CVV.

The gateway (SQLite, in-process bank) runs on an event loop of its own in a thread; each
example starts with two fresh merchants, so the model starts empty.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.integration.http_gateway import PROBLEM_JSON, Gateway, running_gateway

T = TypeVar("T")
CARDS = {  # number -> cvv: cvvs unlike anything else in a response
    "4242424242424242": "735",
    "4000000000000002": "481",
    "5555555555554444": "862",
    "378282246310005": "6195",
}
KEYS = ["order-1", "order-2", "order-3"]
MERCHANTS = ["alice", "bob"]


def _valid(number: str, amount: int) -> dict[str, Any]:
    card = {"number": number, "expiry_month": 12, "expiry_year": 2031, "cvv": CARDS[number]}
    return {"amount": amount, "currency": "GBP", "card": card, "reference": f"ref-{amount}"}


VALID_BODIES = st.builds(_valid, st.sampled_from(list(CARDS)), st.sampled_from([100, 2500]))
INVALID_BODIES = st.sampled_from(
    [
        _valid("4242424242424242", 0),
        {**_valid("4242424242424242", 100), "currency": "XXX"},
        {**_valid("4242424242424242", 100), "card": {"number": "4242424242424241"}},
        {"amount": 100},
    ]
)


class Portal:
    """An event loop in a thread: the state machine's rules are synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


@dataclass
class Accepted:
    merchant: str
    key: str
    body: dict[str, Any]
    status: int
    location: str
    job: dict[str, Any]


def assert_clean(response: httpx.Response) -> None:
    """No card number (nor 7 of its digits in a row) and no CVV; errors are problems."""
    text = response.text
    for number, cvv in CARDS.items():
        windows = {number[i : i + 7] for i in range(len(number) - 6)}
        assert not [window for window in windows if window in text], text
        assert f'"{cvv}"' not in text, text
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM_JSON, text
        assert response.json()["status"] == response.status_code


class PaymentsApi(RuleBasedStateMachine):
    portal: ClassVar[Portal]
    gateway: ClassVar[Gateway]
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.api_keys = {name: self._call(self.gateway.new_api_key(name)) for name in MERCHANTS}
        self.accepted: dict[tuple[str, str], Accepted] = {}
        self.job_statuses: dict[str, str] = {}

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.portal.run(coroutine)

    def _post(self, merchant: str, key: str, body: dict[str, Any]) -> httpx.Response:
        response = self._call(self.gateway.pay(body, key, self.api_keys[merchant]))
        assert_clean(response)
        return response

    def _get(self, merchant: str, path: str) -> httpx.Response:
        response = self._call(self.gateway.get(path, api_key=self.api_keys[merchant]))
        assert_clean(response)
        return response

    @rule(
        target=requests,
        merchant=st.sampled_from(MERCHANTS),
        key=st.sampled_from(KEYS),
        body=VALID_BODIES,
    )
    def request(self, merchant: str, key: str, body: dict[str, Any]) -> Any:
        response = self._post(merchant, key, body)
        previous = self.accepted.get((merchant, key))
        if previous is None:
            assert response.status_code == 202, response.text
            assert "idempotent-replayed" not in response.headers
            accepted = Accepted(
                merchant, key, body, 202, response.headers["location"], response.json()
            )
            self.accepted[(merchant, key)] = accepted
            return accepted
        if previous.body == body:
            self._assert_replayed(previous, response)
        else:
            assert response.status_code == 422, response.text
            assert response.json()["code"] == "idempotency_key_reused"
        return previous

    @rule(merchant=st.sampled_from(MERCHANTS), key=st.sampled_from(KEYS), body=INVALID_BODIES)
    def request_invalid(self, merchant: str, key: str, body: dict[str, Any]) -> None:
        response = self._post(merchant, key, body)

        assert response.status_code == 400, response.text
        assert response.json()["code"] == "validation_error"

    @rule(accepted=requests)
    def replay(self, accepted: Accepted) -> None:
        response = self._post(accepted.merchant, accepted.key, accepted.body)

        self._assert_replayed(accepted, response)

    @rule(accepted=requests, amount=st.sampled_from([1, 99_999]))
    def reuse_key_with_another_body(self, accepted: Accepted, amount: int) -> None:
        other = {**accepted.body, "amount": amount}

        response = self._post(accepted.merchant, accepted.key, other)

        assert response.status_code == 422, response.text
        assert response.json()["code"] == "idempotency_key_reused"

    @rule(accepted=requests)
    def poll(self, accepted: Accepted) -> None:
        job = self._get(accepted.merchant, accepted.location).json()

        assert (job["id"], job["payment_id"]) == (accepted.job["id"], accepted.job["payment_id"])
        assert job["status"] in {"created", "completed", "failed"}
        before = self.job_statuses.get(job["id"], "created")
        assert before == "created" or job["status"] == before, "a final job changed"
        self.job_statuses[job["id"]] = job["status"]

    @rule(accepted=requests)
    def read_payment(self, accepted: Accepted) -> None:
        payment = self._get(accepted.merchant, accepted.job["links"]["payment"]).json()

        number = accepted.body["card"]["number"]
        assert (payment["amount"], payment["currency"]) == (accepted.body["amount"], "GBP")
        assert (payment["card"]["bin"], payment["card"]["last4"]) == (number[:6], number[-4:])

    @rule(accepted=requests)
    def read_as_the_other_merchant(self, accepted: Accepted) -> None:
        intruder = next(name for name in MERCHANTS if name != accepted.merchant)

        for path in (accepted.location, accepted.job["links"]["payment"]):
            response = self._get(intruder, path)
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "not_found"

    @invariant()
    def one_payment_per_merchant_and_key(self) -> None:
        for merchant in MERCHANTS:
            listed = self._get(merchant, "/payments?limit=100").json()
            expected = {
                accepted.job["payment_id"]
                for (owner, _), accepted in self.accepted.items()
                if owner == merchant
            }
            assert {payment["id"] for payment in listed["data"]} == expected

    def _assert_replayed(self, first: Accepted, response: httpx.Response) -> None:
        assert response.status_code == first.status, response.text
        assert response.headers["idempotent-replayed"] == "true"
        assert response.headers["location"] == first.location
        assert response.json() == first.job


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Portal]:
    portal = Portal()
    stack = AsyncExitStack()
    try:
        PaymentsApi.gateway = portal.run(stack.enter_async_context(running_gateway(tmp_path)))
        PaymentsApi.portal = portal
        yield portal
    finally:
        portal.run(stack.aclose())
        portal.close()


def test_http_api_keeps_its_invariants_under_any_sequence_of_calls(api: Portal) -> None:
    run_state_machine_as_test(
        PaymentsApi,
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
