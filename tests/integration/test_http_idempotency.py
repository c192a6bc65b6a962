"""Idempotency-Key over HTTP: replays, reuse, concurrency, per-merchant isolation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.http_gateway import Gateway, assert_problem, payment_body, running_gateway


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path) as running:
        yield running


async def test_missing_idempotency_key_is_rejected(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/payments", json=payment_body(), headers=gateway.headers()
    )

    assert_problem(response, 400, "idempotency_key_missing")


@pytest.mark.parametrize("key", [b"", b"k" * 256, "clé".encode("latin-1"), b"a\x7fb"])
async def test_idempotency_key_that_is_not_1_to_255_printable_ascii_is_invalid(
    gateway: Gateway, key: bytes
) -> None:
    headers = [(name.encode(), value.encode()) for name, value in gateway.headers().items()]
    headers.append((b"idempotency-key", key))
    response = await gateway.client.post(
        "/payments", content=json.dumps(payment_body()).encode(), headers=headers
    )

    assert_problem(response, 400, "idempotency_key_invalid")


async def test_longest_allowed_key_is_accepted(gateway: Gateway) -> None:
    assert (await gateway.pay(key="k" * 255)).status_code == 202


async def test_same_key_and_body_replays_the_first_response(gateway: Gateway) -> None:
    first = await gateway.pay(key="order-1")
    await gateway.final_job(first.headers["location"])

    replay = await gateway.pay(key="order-1")

    assert replay.status_code == first.status_code == 202
    assert replay.headers["location"] == first.headers["location"]
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len((await gateway.get("/payments")).json()["data"]) == 1


async def test_same_json_value_with_other_key_order_and_spacing_replays(gateway: Gateway) -> None:
    body = payment_body(reference="ORD-7", metadata={"a": "1", "b": "2"})
    first = await gateway.pay(body, key="order-7")
    reordered = {key: body[key] for key in reversed(body)}
    reordered["metadata"] = {"b": "2", "a": "1"}
    raw = json.dumps(reordered, indent=4, separators=(" ,  ", " :  ")).encode()

    replay = await gateway.client.post("/payments", content=raw, headers=gateway.headers("order-7"))

    assert replay.status_code == 202
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()


async def test_same_key_with_another_body_is_reused(gateway: Gateway) -> None:
    await gateway.pay(key="order-2")

    response = await gateway.pay(payment_body(amount=999), key="order-2")

    assert_problem(response, 422, "idempotency_key_reused")


async def test_rejected_request_stores_nothing_so_the_key_can_be_used_again(
    gateway: Gateway,
) -> None:
    rejected = await gateway.pay(payment_body(amount=-5), key="order-3")
    assert_problem(rejected, 400, "validation_error")

    accepted = await gateway.pay(key="order-3")

    assert accepted.status_code == 202
    assert "idempotent-replayed" not in accepted.headers


async def test_malformed_body_stores_nothing_either(gateway: Gateway) -> None:
    malformed = await gateway.client.post(
        "/payments", content=b"{", headers=gateway.headers("order-4")
    )
    assert_problem(malformed, 400, "malformed_json")

    assert (await gateway.pay(key="order-4")).status_code == 202


async def test_two_merchants_with_the_same_key_never_see_each_others_response(
    gateway: Gateway,
) -> None:
    other_key = await gateway.new_api_key()

    mine = await gateway.pay(key="shared")
    theirs = await gateway.pay(key="shared", api_key=other_key)

    assert theirs.status_code == 202
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert (await gateway.get(theirs.headers["location"], api_key=other_key)).status_code == 200
    assert (await gateway.get(mine.headers["location"], api_key=other_key)).status_code == 404


async def test_concurrent_identical_requests_create_exactly_one_payment(gateway: Gateway) -> None:
    responses = await asyncio.gather(*(gateway.pay(key="race") for _ in range(20)))

    accepted = [r for r in responses if r.status_code == 202]
    in_progress = [r for r in responses if r.status_code == 409]
    assert len(accepted) + len(in_progress) == 20
    assert len({r.json()["id"] for r in accepted}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in accepted) <= 1
    for response in in_progress:
        assert_problem(response, 409, "idempotency_key_in_progress")
        assert response.headers["retry-after"] == "1"
    await asyncio.sleep(0.2)
    listed = (await gateway.get("/payments")).json()["data"]
    assert len(listed) == 1
    assert listed[0]["id"] == accepted[0].json()["payment_id"]
