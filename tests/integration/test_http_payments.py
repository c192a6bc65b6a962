"""POST /payments over HTTP: acceptance, processing through the bank, and every field error."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.http_gateway import (
    CVV,
    VISA,
    Gateway,
    assert_problem,
    payment_body,
    running_gateway,
)

JOB_KEYS = {"id", "type", "status", "payment_id", "error", "created_at", "completed_at", "links"}
PAYMENT_KEYS = {
    "id", "status", "amount", "currency", "reference", "metadata", "card", "decline_code",
    "authorization_code", "created_at", "updated_at", "links",
}  # fmt: skip
RFC3339_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path) as running:
        yield running


async def test_accepted_payment_answers_202_with_location_and_created_job(gateway: Gateway) -> None:
    response = await gateway.pay()

    assert response.status_code == 202
    job = response.json()
    assert job.keys() == JOB_KEYS
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert "idempotent-replayed" not in response.headers
    assert (job["type"], job["status"], job["error"], job["completed_at"]) == (
        "payment", "created", None, None,
    )  # fmt: skip
    assert job["links"] == {
        "self": f"/jobs/{job['id']}",
        "payment": f"/payments/{job['payment_id']}",
    }
    assert job["created_at"].endswith("Z")


async def test_visa_test_card_is_authorized_within_a_second(gateway: Gateway) -> None:
    body = payment_body(reference="ORD-001", metadata={"customer": "c_42"})
    body["card"]["holder_name"] = "Jane Doe"
    accepted = await gateway.pay(body)
    started = time.monotonic()

    job = await gateway.final_job(accepted.headers["location"])

    assert time.monotonic() - started < 1.0
    assert (job["status"], job["error"]) == ("completed", None)
    assert job["completed_at"] is not None
    payment = (await gateway.get(job["links"]["payment"])).json()
    assert payment.keys() == PAYMENT_KEYS
    assert payment["status"] == "authorized"
    assert payment["authorization_code"]
    assert payment["decline_code"] is None
    assert (payment["amount"], payment["currency"], payment["reference"]) == (
        1050,
        "GBP",
        "ORD-001",
    )
    assert payment["metadata"] == {"customer": "c_42"}
    assert payment["card"] == {
        "scheme": "visa", "bin": "424242", "last4": "4242",
        "expiry_month": 12, "expiry_year": 2031, "holder_name": "Jane Doe",
    }  # fmt: skip
    assert payment["links"] == {"self": f"/payments/{payment['id']}"}
    assert VISA not in str(payment)


@pytest.mark.parametrize(
    ("number", "scheme"),
    [
        ("5555555555554444", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
    ],
)
async def test_other_schemes_are_authorized(gateway: Gateway, number: str, scheme: str) -> None:
    payment = await gateway.settled_payment(number)

    assert payment["status"] == "authorized"
    assert payment["card"]["scheme"] == scheme


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000000000000127", "incorrect_cvc"),
    ],
)
async def test_declining_test_cards_complete_the_job_with_their_decline_code(
    gateway: Gateway, number: str, decline_code: str
) -> None:
    accepted = await gateway.pay(payment_body(number))
    job = await gateway.final_job(accepted.headers["location"])
    payment = (await gateway.get(job["links"]["payment"])).json()

    assert (job["status"], job["error"]) == ("completed", None)
    assert (payment["status"], payment["decline_code"]) == ("declined", decline_code)
    assert payment["authorization_code"] is None


async def test_failing_bank_fails_payment_and_job_with_bank_unavailable(gateway: Gateway) -> None:
    accepted = await gateway.pay(payment_body("4000000000000119"))
    job = await gateway.final_job(accepted.headers["location"])
    payment = (await gateway.get(job["links"]["payment"])).json()

    assert job["status"] == "failed"
    assert job["error"]["code"] == "bank_unavailable"
    assert job["error"]["message"]
    assert job["completed_at"] is not None
    assert payment["status"] == "failed"


INVALID_FIELDS: list[tuple[dict[str, Any], str, str]] = [
    ({"amount": 10.5}, "amount", "amount_invalid"),
    ({"amount": "1050"}, "amount", "amount_invalid"),
    ({"amount": 0}, "amount", "amount_invalid"),
    ({"amount": 100_000_000_000}, "amount", "amount_invalid"),
    ({"amount": 10**30}, "amount", "amount_invalid"),
    ({"amount": True}, "amount", "amount_invalid"),
    ({"currency": "gbp"}, "currency", "currency_invalid"),
    ({"currency": "XXX"}, "currency", "currency_unsupported"),
    ({"card": {"number": "4242424242424241"}}, "card.number", "card_number_invalid"),
    ({"card": {"number": "42424242424"}}, "card.number", "card_number_invalid"),
    ({"card": {"expiry_year": 2020}}, "card.expiry_year", "card_expired"),
    ({"card": {"expiry_month": 13}}, "card.expiry_month", "expiry_month_invalid"),
    ({"card": {"expiry_year": 31}}, "card.expiry_year", "expiry_year_invalid"),
    ({"card": {"cvv": "12"}}, "card.cvv", "cvv_invalid"),
    ({"card": {"number": "378282246310005", "cvv": "123"}}, "card.cvv", "cvv_invalid"),
    ({"reference": "x" * 51}, "reference", "reference_invalid"),
    ({"metadata": {f"k{i}": "v" for i in range(21)}}, "metadata", "metadata_invalid"),
    ({"metadata": {"k": 1}}, "metadata", "metadata_invalid"),
    ({"currency": None}, "currency", "field_required"),
    ({"card": {"cvv": None}}, "card.cvv", "field_required"),
]


@pytest.mark.parametrize(("fields", "param", "code"), INVALID_FIELDS)
async def test_invalid_field_is_reported_with_its_code(
    gateway: Gateway, fields: dict[str, Any], param: str, code: str
) -> None:
    response = await gateway.pay(payment_body(**fields))

    problem = assert_problem(response, 400, "validation_error")
    assert problem["title"] == "The request is invalid"
    assert [(e["param"], e["code"]) for e in problem["errors"]] == [(param, code)]
    assert problem["errors"][0]["message"]
    assert problem["detail"] == "1 field is invalid"


async def test_every_invalid_field_is_reported_at_once(gateway: Gateway) -> None:
    body = {"amount": -1, "currency": "gbp", "card": {"number": "1234", "expiry_month": 0}}

    problem = assert_problem(await gateway.pay(body), 400, "validation_error")

    reported = {(e["param"], e["code"]) for e in problem["errors"]}
    assert reported == {
        ("amount", "amount_invalid"),
        ("currency", "currency_invalid"),
        ("card.number", "card_number_invalid"),
        ("card.expiry_month", "expiry_month_invalid"),
        ("card.expiry_year", "field_required"),
        ("card.cvv", "field_required"),
    }
    assert problem["detail"] == "6 fields are invalid"


async def test_missing_body_fields_are_each_required(gateway: Gateway) -> None:
    problem = assert_problem(await gateway.pay({}), 400, "validation_error")

    assert {(e["param"], e["code"]) for e in problem["errors"]} == {
        ("amount", "field_required"), ("currency", "field_required"), ("card", "field_required"),
    }  # fmt: skip


async def test_unknown_fields_are_ignored(gateway: Gateway) -> None:
    body = payment_body(surprise={"nested": [1, 2]}, card={"colour": "blue"})

    assert (await gateway.pay(body)).status_code == 202


@pytest.mark.parametrize(
    "raw", [b"{", b"", b"not json", b'{"amount": 1,}', b"\xff\xfe", b"[" * 5000, b"NaN"]
)
async def test_body_that_is_not_json_is_malformed_json(gateway: Gateway, raw: bytes) -> None:
    response = await gateway.client.post("/payments", content=raw, headers=gateway.headers("k"))

    assert_problem(response, 400, "malformed_json")


async def test_text_that_is_not_unicode_is_malformed_json(gateway: Gateway) -> None:
    raw = json.dumps(payment_body(metadata={"note": "x"})).replace('"x"', '"\\ud800"')
    response = await gateway.client.post("/payments", content=raw, headers=gateway.headers("k"))

    assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize("raw", [b"[]", b"42", b'"payment"', b"null"])
async def test_json_that_is_not_an_object_is_a_validation_error(
    gateway: Gateway, raw: bytes
) -> None:
    response = await gateway.client.post("/payments", content=raw, headers=gateway.headers("k"))

    problem = assert_problem(response, 400, "validation_error")
    assert problem["errors"][0]["param"] == "body"


async def test_json_is_parsed_whatever_the_content_type(gateway: Gateway) -> None:
    headers = gateway.headers("k") | {"Content-Type": "text/plain"}
    response = await gateway.client.post(
        "/payments", content=json.dumps(payment_body()), headers=headers
    )

    assert response.status_code == 202, response.text


async def test_body_over_64_kib_is_payload_too_large(gateway: Gateway) -> None:
    body = payment_body(reference="x" * 70_000)

    assert_problem(await gateway.pay(body), 413, "payload_too_large")


async def test_streamed_body_over_the_limit_is_cut_off_without_content_length(
    gateway: Gateway,
) -> None:
    chunks_sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        while chunks_sent < 1000:
            chunks_sent += 1
            yield b" " * 8192

    response = await gateway.client.post(
        "/payments", content=endless(), headers=gateway.headers("k")
    )

    assert_problem(response, 413, "payload_too_large")
    assert chunks_sent < 20


async def test_body_just_under_the_limit_is_read(gateway: Gateway) -> None:
    body = payment_body(padding="x" * 60_000)

    assert (await gateway.pay(body)).status_code == 202


async def test_responses_never_carry_the_card_number_or_cvv(gateway: Gateway) -> None:
    accepted = await gateway.pay()
    job = await gateway.final_job(accepted.headers["location"])
    texts = [accepted.text, (await gateway.get(job["links"]["payment"])).text]
    texts.append((await gateway.get("/payments")).text)

    for text in texts:
        assert VISA not in text
        assert f'"{CVV}"' not in text
