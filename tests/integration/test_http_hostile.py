"""Hostile input: whatever arrives, the answer is a 4xx problem and nothing is stored.

Bodies are refused before the database is touched, so those run on SQLite; what reaches
the database (path ids, query filters, metadata) runs on PostgreSQL too, which refuses
NUL characters in text that SQLite would take.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import bootstrap
from gateway.adapters import orm
from gateway.domain.commands import CreateMerchant
from gateway.entrypoints.http.app import create_app
from tests.integration.http_gateway import (
    Gateway,
    assert_problem,
    gateway_settings,
    payment_body,
    running_gateway,
    serving,
)

KIB = 1024
DEEP = 10_000


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path) as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
def postgres(request: pytest.FixtureRequest) -> AsyncEngine | None:
    """None on SQLite; a migrated PostgreSQL schema of the test's own."""
    if request.param == "sqlite":
        return None
    engine: AsyncEngine = request.getfixturevalue("pg_engine")
    return engine


@pytest.fixture
async def any_db_gateway(postgres: AsyncEngine | None, tmp_path: Path) -> AsyncIterator[Gateway]:
    """The gateway on SQLite, then on PostgreSQL."""
    if postgres is None:
        async with running_gateway(tmp_path) as running:
            yield running
        return
    container = bootstrap.build(gateway_settings(tmp_path))
    container.engine.override(providers.Object(postgres))
    issued = await container.mediator().send(CreateMerchant("m"))
    async with serving(create_app(container, embedded_relay=True)) as client:
        yield Gateway(client, container, issued.api_key.value)


async def stored_payments(gateway: Gateway) -> int:
    async with gateway.container.engine().connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(orm.payments))
        keys = await connection.scalar(select(func.count()).select_from(orm.idempotency_keys))
    return int(count or 0) + int(keys or 0)


async def post_raw(
    gateway: Gateway, content: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    merged = gateway.headers("hostile-1") | (headers or {})
    return await gateway.client.post("/payments", content=content, headers=merged)


def _raw(body: dict[str, Any]) -> str:
    return json.dumps(body)


BODY = _raw(payment_body())
REFUSED_BODIES: dict[str, tuple[bytes | str, int, str]] = {
    "objects nested 10k deep": (b'{"a":' * DEEP + b"1" + b"}" * DEEP, 400, "malformed_json"),
    "arrays nested 10k deep in metadata": (
        BODY[:-1] + ', "metadata": ' + "[" * DEEP + "]" * DEEP + "}",
        400,
        "malformed_json",
    ),
    "duplicate keys": (BODY[:-1] + ', "amount": 1}', 400, "malformed_json"),
    "duplicate keys in the card": (
        BODY.replace('"cvv":', '"number": "4000000000000002", "cvv":'),
        400,
        "malformed_json",
    ),
    "NUL in the reference": (_raw(payment_body(reference="ORD\x00-1")), 400, "validation_error"),
    "NUL in a metadata value": (
        _raw(payment_body(metadata={"k": "a\x00b"})),
        400,
        "validation_error",
    ),
    "NUL in a metadata key": (_raw(payment_body(metadata={"k\x00": "v"})), 400, "validation_error"),
    "NUL in the holder name": (
        _raw(payment_body(card={"holder_name": "Jane\x00Doe"})),
        400,
        "validation_error",
    ),
    "raw NUL byte in a string": (BODY.replace('"GBP"', '"GB\x00P"'), 400, "malformed_json"),
    "amount 1e400": (BODY.replace('"amount": 1050', '"amount": 1e400'), 400, "validation_error"),
    "amount 10**40": (
        BODY.replace('"amount": 1050', f'"amount": {10**40}'),
        400,
        "validation_error",
    ),
    "amount of 5000 digits": (
        BODY.replace('"amount": 1050', '"amount": ' + "9" * 5000),
        400,
        "malformed_json",
    ),
    "amount -0.0": (BODY.replace('"amount": 1050', '"amount": -0.0'), 400, "validation_error"),
    "expiry year 10**40": (
        BODY.replace('"expiry_year": 2031', f'"expiry_year": {10**40}'),
        400,
        "validation_error",
    ),
    "NaN": (BODY.replace('"amount": 1050', '"amount": NaN'), 400, "malformed_json"),
    "bytes that are not UTF-8": (
        BODY.encode().replace(b'"GBP"', b'"GB\xffP"'),
        400,
        "malformed_json",
    ),
    "UTF-16 with a BOM": (BODY.encode("utf-16"), 400, "malformed_json"),
    "UTF-8 BOM": (b"\xef\xbb\xbf" + BODY.encode(), 400, "malformed_json"),
    "empty body": (b"", 400, "malformed_json"),
    "whitespace only": (b" \n\t ", 400, "malformed_json"),
    "an array": (b"[" + BODY.encode() + b"]", 400, "validation_error"),
    "a string": (b'"payment"', 400, "validation_error"),
    "form-encoded": (b"amount=1050&currency=GBP", 400, "malformed_json"),
    "XML": (b"<payment><amount>1050</amount></payment>", 400, "malformed_json"),
    "unicode direction override in the reference": (
        _raw(payment_body(reference="ORD-\u202e1-DRO")),
        400,
        "validation_error",
    ),
    "lone surrogate in the reference": (
        BODY[:-1] + ', "reference": "\\udc00"}',
        400,
        "malformed_json",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED_BODIES))
async def test_hostile_body_is_refused_with_a_problem_and_nothing_stored(
    gateway: Gateway, name: str
) -> None:
    raw, status, code = REFUSED_BODIES[name]

    response = await post_raw(gateway, raw, {"Content-Type": "application/json"})

    assert_problem(response, status, code)
    assert await stored_payments(gateway) == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "\x7f",
        None,
    ],
)
async def test_non_json_body_under_any_content_type_is_malformed_json(
    gateway: Gateway, content_type: str | None
) -> None:
    headers = gateway.headers("hostile-1")
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = await gateway.client.post("/payments", content=b"--x\r\n\r\n1050", headers=headers)

    assert_problem(response, 400, "malformed_json")
    assert await stored_payments(gateway) == 0


async def test_unicode_reference_is_stored_and_read_back_as_sent(gateway: Gateway) -> None:
    reference = "ÖRDER-✓-🍕-注文"

    accepted = await gateway.pay(payment_body(reference=reference))

    job = await gateway.final_job(accepted.headers["location"])
    payment = (await gateway.get(job["links"]["payment"])).json()
    assert payment["reference"] == reference
    listed = (await gateway.get("/payments", reference=reference)).json()
    assert [p["id"] for p in listed["data"]] == [payment["id"]]


class Consumed:
    """A request body that counts how much of it the server pulled."""

    def __init__(self, total: int, chunk: int = 4 * KIB) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            piece = b" " * min(self.chunk, self.total - self.sent)
            self.sent += len(piece)
            yield piece


async def test_body_over_the_limit_by_content_length_is_refused_before_it_is_read(
    gateway: Gateway,
) -> None:
    body = Consumed(65 * KIB)
    headers = gateway.headers("hostile-1") | {"Content-Length": str(65 * KIB)}

    response = await gateway.client.post("/payments", content=body, headers=headers)

    assert_problem(response, 413, "payload_too_large")
    assert body.sent <= body.chunk
    assert await stored_payments(gateway) == 0


async def test_streamed_body_over_the_limit_is_cut_off_once_past_it(gateway: Gateway) -> None:
    body = Consumed(10 * 1024 * KIB)

    response = await post_raw(gateway, body)

    assert_problem(response, 413, "payload_too_large")
    assert body.sent <= 64 * KIB + body.chunk
    assert await stored_payments(gateway) == 0


async def test_body_under_a_lying_content_length_is_refused(gateway: Gateway) -> None:
    body = Consumed(200 * KIB)
    headers = gateway.headers("hostile-1") | {"Content-Length": "100"}

    response = await gateway.client.post("/payments", content=body, headers=headers)

    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"
    assert body.sent <= 64 * KIB + body.chunk
    assert await stored_payments(gateway) == 0


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Idempotency-Key": "k" * 10_000}, 400, "idempotency_key_invalid"),
        ({"Idempotency-Key": "clé"}, 400, "idempotency_key_invalid"),
        ({"Idempotency-Key": "\t"}, 400, "idempotency_key_invalid"),
        ({"Authorization": "Bearer " + "sk_test_" + "A" * 100_000}, 401, "authentication_required"),
        ({"Authorization": "Bearer sk_test_\u00e9\u00e9"}, 401, "authentication_required"),
    ],
    ids=["long key", "non-ascii key", "tab key", "100 kB api key", "latin-1 api key"],
)
async def test_hostile_headers_are_refused_with_a_problem(
    gateway: Gateway, headers: dict[str, str], status: int, code: str
) -> None:
    merged = gateway.headers("hostile-1") | headers
    encoded = [(name.encode(), value.encode("latin-1")) for name, value in merged.items()]

    response = await gateway.client.post("/payments", content=BODY, headers=encoded)

    assert_problem(response, status, code)
    assert await stored_payments(gateway) == 0


async def test_oversized_request_id_is_replaced_not_echoed(gateway: Gateway) -> None:
    response = await gateway.client.get(
        "/payments", headers=gateway.headers() | {"X-Request-Id": "r" * 10_000}
    )

    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")


def _query_abuse() -> Iterator[tuple[str, dict[str, str]]]:
    yield "limit=1e9", {"limit": "1e9"}
    yield "limit=-1", {"limit": "-1"}
    yield "limit=0", {"limit": "0"}
    yield "limit=101", {"limit": "101"}
    yield "limit=10**40", {"limit": str(10**40)}
    yield "limit=٣ (arabic digit)", {"limit": "٣"}
    yield "limit=NUL", {"limit": "\x00"}
    yield "starting_after=huge", {"starting_after": "pay_" + "9" * 10_000}
    yield "starting_after=not an id", {"starting_after": "' OR 1=1 --"}
    yield "starting_after=NUL", {"starting_after": "pay_\x00"}
    yield "status=<script>", {"status": "<script>alert(1)</script>"}
    yield "status=NUL", {"status": "authorized\x00"}
    yield "reference=too long", {"reference": "r" * 51}
    yield "reference=NUL", {"reference": "ORD\x00"}


QUERY_ABUSE = dict(_query_abuse())


@pytest.mark.parametrize("name", list(QUERY_ABUSE))
async def test_abusive_list_query_is_a_validation_error(any_db_gateway: Gateway, name: str) -> None:
    response = await any_db_gateway.get("/payments", **QUERY_ABUSE[name])

    problem = assert_problem(response, 400, "validation_error")
    assert "<script>" not in response.text
    assert problem["errors"]


@pytest.mark.parametrize(
    "path",
    [
        "/payments/pay_%00",
        "/jobs/job_%00",
        "/payments/" + "p" * 10_000,
        "/jobs/%F0%9F%8D%95",
        "/payments/%C0%AE%C0%AE",
        "/payments/..%2F..%2Fetc%2Fpasswd",
        "/jobs/' OR '1'='1",
    ],
)
async def test_hostile_resource_ids_are_not_found(any_db_gateway: Gateway, path: str) -> None:
    response = await any_db_gateway.get(path)

    assert_problem(response, 404, "not_found")


async def test_nul_in_metadata_is_refused_on_postgres_too(any_db_gateway: Gateway) -> None:
    response = await any_db_gateway.pay(payment_body(metadata={"note": "a\x00b"}))

    problem = assert_problem(response, 400, "validation_error")
    assert [error["code"] for error in problem["errors"]] == ["metadata_invalid"]
    assert await stored_payments(any_db_gateway) == 0
