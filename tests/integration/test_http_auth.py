"""Authentication over HTTP, and another merchant's resources looking like missing ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.domain.commands import CreateApiKey, RevokeApiKey
from gateway.domain.result import Ok
from tests.integration.http_gateway import Gateway, assert_problem, payment_body, running_gateway

PROTECTED = [
    ("POST", "/payments"),
    ("GET", "/payments"),
    ("GET", "/payments/pay_01J0000000000000000000000"),
    ("GET", "/jobs/job_01J0000000000000000000000"),
]
WELL_FORMED_UNKNOWN = "sk_test_" + "A" * 40


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path) as running:
        yield running


async def _call(
    gateway: Gateway, method: str, path: str, authorization: str | None
) -> httpx.Response:
    headers = {"Idempotency-Key": "k"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return await gateway.client.request(method, path, json=payment_body(), headers=headers)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-key",
        "Bearer sk_test_short",
        f"Bearer {WELL_FORMED_UNKNOWN}",
        f"Token {WELL_FORMED_UNKNOWN}",
    ],
)
async def test_missing_malformed_or_unknown_key_is_401_with_www_authenticate(
    gateway: Gateway, method: str, path: str, authorization: str | None
) -> None:
    response = await _call(gateway, method, path, authorization)

    problem = assert_problem(response, 401, "authentication_required")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "errors" not in problem


async def test_scheme_is_case_insensitive(gateway: Gateway) -> None:
    response = await gateway.client.get(
        "/payments", headers={"Authorization": f"bearer {gateway.api_key}"}
    )

    assert response.status_code == 200


async def test_revoked_key_is_refused_while_another_key_of_the_merchant_works(
    gateway: Gateway,
) -> None:
    mediator = gateway.container.mediator()
    accepted = await gateway.pay()
    principal = await gateway.container.authenticator().authenticate(gateway.api_key)
    assert isinstance(principal, Ok)
    created = await mediator.send(CreateApiKey(principal.value.merchant_id))
    assert isinstance(created, Ok)
    second_key = created.value.api_key.value

    assert isinstance(await mediator.send(RevokeApiKey(principal.value.key_id)), Ok)
    await asyncio.sleep(0.01)

    refused = await gateway.get("/payments")
    assert_problem(refused, 401, "authentication_required")
    assert refused.headers["www-authenticate"] == "Bearer"
    job = await gateway.get(accepted.headers["location"], api_key=second_key)
    assert job.status_code == 200


@pytest.mark.parametrize(
    "path", ["/health/live", "/health/ready", "/metrics", "/docs", "/docs/openapi.json"]
)
async def test_operations_endpoints_need_no_key(gateway: Gateway, path: str) -> None:
    assert (await gateway.client.get(path)).status_code == 200


async def test_another_merchants_job_and_payment_are_not_found_like_missing_ones(
    gateway: Gateway,
) -> None:
    accepted = await gateway.pay()
    job = await gateway.final_job(accepted.headers["location"])
    intruder = await gateway.new_api_key()

    for own_path, missing_path in [
        (job["links"]["self"], "/jobs/job_01J0000000000000000000000"),
        (job["links"]["payment"], "/payments/pay_01J0000000000000000000000"),
    ]:
        foreign = assert_problem(await gateway.get(own_path, api_key=intruder), 404, "not_found")
        missing = assert_problem(
            await gateway.get(missing_path, api_key=intruder), 404, "not_found"
        )
        assert {**foreign, "request_id": ""} == {**missing, "request_id": ""}
    listed = (await gateway.get("/payments", api_key=intruder)).json()
    assert listed == {"data": [], "has_more": False, "next": None}
