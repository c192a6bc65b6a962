"""POST /webhooks/bank through the real app on SQLite, and the bank's 202 cards end to end."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from gateway import bootstrap
from gateway.domain import signature
from gateway.domain.commands import CreateMerchant
from gateway.entrypoints.http.app import create_app
from tests.fixtures.processes import free_port
from tests.integration.http_gateway import (
    Gateway,
    assert_problem,
    gateway_settings,
    payment_body,
    running_gateway,
)
from tests.integration.served_gateway import (
    BANK_SECRET,
    PENDING_CARDS,
    SILENT_CARD,
    callbacks_of,
    final_job,
    pay,
    payment_of,
    pending_rows,
    served,
    webhook_url,
)

SETTINGS = {"bank_webhook_secret": f"{BANK_SECRET},previous-secret"}


def event(payment_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "id": f"evt_{time.monotonic_ns()}",
        "type": "payment.authorized",
        "idempotency_key": payment_id,
        "authorization_code": "HOOK01",
        "decline_code": None,
    }
    return body | fields


async def post_callback(
    gateway: Gateway, body: dict[str, Any], *, secret: str = BANK_SECRET, offset_s: int = 0
) -> httpx.Response:
    raw = json.dumps(body).encode()
    header = signature.sign(raw, [secret], int(time.time()) + offset_s)
    headers = {"Bank-Signature": header, "Content-Type": "application/json"}
    return await gateway.client.post("/webhooks/bank", content=raw, headers=headers)


async def pending_payment(gateway: Gateway) -> dict[str, Any]:
    """A payment the bank answered 202 for and never calls back about (a long timeout)."""
    accepted = await gateway.pay(payment_body(SILENT_CARD))
    for _ in range(200):
        if await pending_rows(gateway.container) == 1:
            break
        await asyncio.sleep(0.02)
    job = (await gateway.get(accepted.headers["location"])).json()
    payment: dict[str, Any] = (await gateway.get(job["links"]["payment"])).json()
    assert (job["status"], payment["status"]) == ("created", "pending")
    return payment


async def test_a_signed_callback_settles_the_payment_without_an_api_key(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, SETTINGS) as gateway:
        payment = await pending_payment(gateway)
        body = event(payment["id"])

        response = await post_callback(gateway, body)

        assert response.status_code == 200, response.text
        assert response.json() == {
            "event_id": body["id"],
            "payment_id": payment["id"],
            "outcome": "applied",
        }
        settled = (await gateway.get(f"/payments/{payment['id']}")).json()
        assert (settled["status"], settled["authorization_code"]) == ("authorized", "HOOK01")
        assert await callbacks_of(gateway.container, payment["id"]) == [
            ("payment.authorized", "applied")
        ]
        assert await pending_rows(gateway.container) == 0


async def test_forged_stale_and_replayed_callbacks_change_nothing(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, SETTINGS) as gateway:
        payment = await pending_payment(gateway)
        forged = await post_callback(gateway, event(payment["id"]), secret="guessed")
        stale = await post_callback(gateway, event(payment["id"]), offset_s=-301)
        unsigned = await gateway.client.post("/webhooks/bank", json=event(payment["id"]))
        for response in (forged, stale, unsigned):
            assert_problem(response, 401, "signature_invalid")
        assert "www-authenticate" not in forged.headers
        assert (await gateway.get(f"/payments/{payment['id']}")).json() == payment
        assert await callbacks_of(gateway.container, payment["id"]) == []

        first = event(payment["id"], type="payment.declined", decline_code="do_not_honor")
        assert (await post_callback(gateway, first, secret="previous-secret")).status_code == 200
        declined = (await gateway.get(f"/payments/{payment['id']}")).json()
        replayed = await post_callback(gateway, first | {"type": "payment.authorized"})

        assert replayed.status_code == 200
        assert replayed.json()["outcome"] == "replayed"
        assert (await gateway.get(f"/payments/{payment['id']}")).json() == declined
        assert declined["decline_code"] == "do_not_honor"


async def test_callback_errors_are_problem_details(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, SETTINGS) as gateway:
        payment = await pending_payment(gateway)
        invalid = await post_callback(gateway, {"id": "evt_x", "type": "payment.refunded"})
        problem = assert_problem(invalid, 400, "validation_error")
        assert {e["param"] for e in problem["errors"]} == {"type", "idempotency_key"}
        assert_problem(await post_callback(gateway, event("pay_unknown")), 404, "not_found")
        await post_callback(gateway, event(payment["id"]))
        decline = event(payment["id"], type="payment.declined")
        assert_problem(await post_callback(gateway, decline), 409, "payment_already_final")
        oversized = await gateway.client.post("/webhooks/bank", content=b"x" * 70_000)
        assert_problem(oversized, 413, "payload_too_large")


async def test_the_callback_route_is_documented_without_security(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, SETTINGS) as gateway:
        document = (await gateway.client.get("/docs/openapi.json")).json()
    operation = document["paths"]["/webhooks/bank"]["post"]
    assert set(operation["responses"]) == {"200", "400", "401", "404", "409", "413", "500", "503"}
    assert not operation.get("security")
    assert "requestBody" in operation
    assert any(p["name"] == "Bank-Signature" for p in operation["parameters"])


async def test_cards_answered_202_are_settled_by_the_banks_webhook_or_the_status_lookup(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = gateway_settings(
        tmp_path,
        bank_webhook_url=webhook_url(port),
        bank_webhook_secret=BANK_SECRET,
        bank_pending_timeout_s=3.0,
    )
    container = bootstrap.build(settings)
    await bootstrap.migrate_database(container)
    api_key = (await container.mediator().send(CreateMerchant("m"))).api_key.value

    async with served(create_app(container, embedded_relay=True), port) as client:
        locations = {
            name: await pay(client, api_key, number)
            for name, number in {**PENDING_CARDS, "lookup": SILENT_CARD}.items()
        }
        jobs = {name: await final_job(client, api_key, loc, 15) for name, loc in locations.items()}
        payments = {name: await payment_of(client, api_key, job) for name, job in jobs.items()}

        assert {name: job["status"] for name, job in jobs.items()} == dict.fromkeys(
            locations, "completed"
        )
        assert payments["webhook_authorized"]["status"] == "authorized"
        declined = payments["webhook_declined"]
        assert (declined["status"], declined["decline_code"]) == ("declined", "do_not_honor")
        assert payments["lookup"]["status"] == "authorized"
        assert await callbacks_of(container, payments["webhook_authorized"]["id"]) == [
            ("payment.authorized", "applied")
        ]
        assert await callbacks_of(container, payments["webhook_declined"]["id"]) == [
            ("payment.declined", "applied")
        ]
        assert await callbacks_of(container, payments["lookup"]["id"]) == []
        assert await pending_rows(container) == 0
