"""Rate limits over HTTP, forwarded headers, and API keys kept as prefix + digest only.

The limits run on a clock the test turns (`container.request_limits` overridden). httpx's
ASGI transport connects from 127.0.0.1: with it trusted as a proxy, `X-Forwarded-For`
names the client.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from sqlalchemy import func, select

from gateway.adapters import orm
from gateway.application.rate_limit import RequestLimits
from gateway.domain.commands import CreateApiKey, CreateMerchant
from gateway.domain.result import Ok
from tests.integration.http_gateway import Gateway, assert_problem, running_gateway

LOAD_BALANCER = {"trusted_proxies": (ipaddress.ip_network("127.0.0.0/8"),)}
BAD_KEY = "Bearer sk_test_" + "B" * 40


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limits(clock: FakeClock, per_s: float = 1.0, burst: int = 3, failures: int = 3) -> Any:
    def override(container: Any) -> None:
        container.request_limits.override(
            providers.Object(RequestLimits.of(per_s, burst, failures, clock=clock))
        )

    return override


@pytest.fixture
async def gateway(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path, LOAD_BALANCER, limits(clock)) as running:
        yield running


async def _from(gateway: Gateway, address: str, authorization: str) -> Any:
    headers = {"Authorization": authorization, "X-Forwarded-For": address}
    return await gateway.client.get("/payments", headers=headers)


async def test_merchant_over_its_rate_gets_429_with_retry_after(gateway: Gateway) -> None:
    for _ in range(3):
        assert (await gateway.get("/payments")).status_code == 200

    refused = await gateway.get("/payments")

    problem = assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "1"
    assert "merchant" in problem["detail"]


async def test_other_merchants_are_unaffected(gateway: Gateway) -> None:
    other = await gateway.new_api_key()
    for _ in range(4):
        await gateway.get("/payments")

    assert (await gateway.get("/payments", api_key=other)).status_code == 200
    assert_problem(await gateway.get("/payments"), 429, "rate_limited")


async def test_allowance_refills_over_time(gateway: Gateway, clock: FakeClock) -> None:
    for _ in range(4):
        await gateway.get("/payments")

    clock.now += 1.0

    assert (await gateway.get("/payments")).status_code == 200
    assert (await gateway.get("/payments")).status_code == 429


async def test_retry_after_is_whole_seconds_rounded_up(tmp_path: Path, clock: FakeClock) -> None:
    async with running_gateway(tmp_path, None, limits(clock, per_s=0.3, burst=1)) as gateway:
        await gateway.get("/payments")
        clock.now += 0.1

        refused = await gateway.get("/payments")

    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "4"  # 3.0 s of 1/0.3 s remain: never "0"


async def test_rate_limited_payment_request_stores_nothing(gateway: Gateway) -> None:
    for _ in range(3):
        await gateway.get("/payments")

    refused = await gateway.pay(key="limited-1")

    assert_problem(refused, 429, "rate_limited")
    async with gateway.container.engine().connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(orm.payments)) == 0


async def test_failed_keys_from_one_address_are_limited_but_a_valid_key_still_passes(
    gateway: Gateway, clock: FakeClock
) -> None:
    valid = f"Bearer {gateway.api_key}"
    for _ in range(3):
        assert_problem(await _from(gateway, "203.0.113.7", BAD_KEY), 401, "authentication_required")

    blocked = await _from(gateway, "203.0.113.7", BAD_KEY)
    with_valid_key = await _from(gateway, "203.0.113.7", valid)

    problem = assert_problem(blocked, 429, "rate_limited")
    assert "authentication" in problem["detail"]
    assert blocked.headers["retry-after"] == "20"  # 3 a minute: one back every 20 s
    assert with_valid_key.status_code == 200, "clients sharing the address are not locked out"
    assert_problem(await _from(gateway, "203.0.113.7", BAD_KEY), 429, "rate_limited")
    clock.now += 20
    assert_problem(await _from(gateway, "203.0.113.7", BAD_KEY), 401, "authentication_required")


async def test_failure_limit_is_per_address(gateway: Gateway) -> None:
    for _ in range(4):
        await _from(gateway, "203.0.113.7", BAD_KEY)

    other = await _from(gateway, "198.51.100.4", BAD_KEY)

    assert_problem(other, 401, "authentication_required")


async def test_successful_requests_do_not_count_as_failures(gateway: Gateway) -> None:
    keys = [gateway.api_key] + [await gateway.new_api_key(f"m{i}") for i in range(4)]

    for key in keys:  # 5 successes from one address, over a limit of 3 failures
        assert (await _from(gateway, "203.0.113.7", f"Bearer {key}")).status_code == 200


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with running_gateway(tmp_path, None, limits(clock)) as gateway:
        for address in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]:
            await _from(gateway, address, BAD_KEY)

        spoofed = await _from(gateway, "203.0.113.4", BAD_KEY)

    assert_problem(spoofed, 429, "rate_limited")  # all four came from 127.0.0.1


async def test_forwarded_for_names_the_right_most_untrusted_hop(gateway: Gateway) -> None:
    for spoofed_left in ["1.1.1.1", "2.2.2.2", "3.3.3.3"]:
        await _from(gateway, f"{spoofed_left}, 203.0.113.7", BAD_KEY)

    refused = await _from(gateway, "4.4.4.4, 203.0.113.7", BAD_KEY)

    assert_problem(refused, 429, "rate_limited")


async def test_api_keys_are_stored_as_prefix_and_sha256_digest_only(gateway: Gateway) -> None:
    mediator = gateway.container.mediator()
    issued = await mediator.send(CreateMerchant("Stored keys"))
    extra = await mediator.send(CreateApiKey(issued.merchant_id))
    assert isinstance(extra, Ok)
    plain_keys = [gateway.api_key, issued.api_key.value, extra.value.api_key.value]

    async with gateway.container.engine().connect() as connection:
        stored = (await connection.execute(select(orm.api_keys))).mappings().all()
        every_value = [
            str(value)
            for table in orm.metadata.sorted_tables
            for row in (await connection.execute(select(table))).all()
            for value in row
        ]

    by_prefix = {row["prefix"]: row["digest"] for row in stored}
    for key in plain_keys:
        assert by_prefix[key[:16]] == hashlib.sha256(key.encode()).hexdigest()
        secret = key[16:]
        assert not [value for value in every_value if key in value or secret in value]
