"""/webhook-endpoints and /events over HTTP: every answer and every error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.entrypoints.http.openapi import COMMON_CODES
from gateway.entrypoints.http.problems import TITLES
from tests.fixtures.processes import free_port
from tests.integration.http_gateway import Gateway, assert_problem, running_gateway

ENDPOINT_KEYS = {"id", "url", "events", "created_at"}
ALL_EVENTS = ["payment.authorized", "payment.declined", "payment.failed"]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """Internal addresses allowed (as under `gateway dev`); nothing listens at the URLs."""
    async with running_gateway(tmp_path, {"webhook_allow_internal": True}) as gateway:
        yield gateway


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[Gateway]:
    """The production rules: https to public addresses only."""
    async with running_gateway(tmp_path) as gateway:
        yield gateway


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}/hooks"


async def create(gateway: Gateway, body: Any, api_key: str | None = None) -> httpx.Response:
    return await gateway.client.post(
        "/webhook-endpoints", json=body, headers=gateway.headers(api_key=api_key)
    )


async def created(gateway: Gateway, **body: Any) -> dict[str, Any]:
    answer = await create(gateway, {"url": closed_url(), **body})
    assert answer.status_code == 201, answer.text
    endpoint: dict[str, Any] = answer.json()
    return endpoint


async def test_creating_an_endpoint_answers_201_with_its_secret(gateway: Gateway) -> None:
    url = closed_url()

    answer = await create(gateway, {"url": url, "events": ["payment.failed"]})

    assert answer.status_code == 201
    endpoint = answer.json()
    assert set(endpoint) == ENDPOINT_KEYS | {"secret"}
    assert endpoint["id"].startswith("we_")
    assert endpoint["secret"].startswith("whsec_")
    assert (endpoint["url"], endpoint["events"]) == (url, ["payment.failed"])
    assert endpoint["created_at"].endswith("Z")


async def test_reading_and_listing_never_show_the_secret(gateway: Gateway) -> None:
    endpoints = [await created(gateway) for _ in range(3)]

    one = (await gateway.get(f"/webhook-endpoints/{endpoints[0]['id']}")).json()
    first = (await gateway.get("/webhook-endpoints", limit="2")).json()
    second = (await gateway.get(first["next"])).json()

    assert one == {k: v for k, v in endpoints[0].items() if k != "secret"}
    assert one["events"] == ALL_EVENTS
    assert [e["id"] for e in first["data"]] == [endpoints[2]["id"], endpoints[1]["id"]]
    assert first["has_more"] is True
    assert first["next"] == f"/webhook-endpoints?starting_after={endpoints[1]['id']}&limit=2"
    assert [e["id"] for e in second["data"]] == [endpoints[0]["id"]]
    assert (second["has_more"], second["next"]) == (False, None)
    assert all(set(e) == ENDPOINT_KEYS for e in first["data"] + second["data"])


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ({"url": "http://127.0.0.1/", "events": ["payment.refunded"]}, ["events[0]"]),
        ({"url": "http://127.0.0.1/", "events": []}, ["events"]),
        ({"url": "http://127.0.0.1/", "events": "payment.failed"}, ["events"]),
        ({"events": ["payment.failed"]}, ["url"]),
        ({"url": ["x"], "events": [1]}, ["url", "events[0]"]),
        ("https://hooks.example.com", ["body"]),
    ],
)
async def test_a_bad_body_answers_400_listing_every_invalid_field(
    gateway: Gateway, body: Any, params: list[str]
) -> None:
    problem = assert_problem(await create(gateway, body), 400, "validation_error")

    assert [error["param"] for error in problem["errors"]] == params


async def test_a_body_that_is_not_json_answers_400_malformed_json(gateway: Gateway) -> None:
    answer = await gateway.client.post(
        "/webhook-endpoints", content=b"{url:", headers=gateway.headers()
    )

    assert_problem(answer, 400, "malformed_json")


@pytest.mark.parametrize(
    "url",
    [
        *("hooks.example.com/x", "ftp://127.0.0.1/", "https://", "/relative", "not a url", ""),
        *(123, 1.5, True, ["https://hooks.example.com"], {"href": "https://hooks.example.com"}),
    ],
)
async def test_anything_but_an_absolute_http_url_answers_422_url_invalid(
    gateway: Gateway, url: Any
) -> None:
    assert_problem(await create(gateway, {"url": url}), 422, "url_invalid")


async def test_a_url_that_is_not_one_is_listed_as_url_invalid_beside_other_errors(
    gateway: Gateway,
) -> None:
    problem = assert_problem(
        await create(gateway, {"url": 123, "events": [1]}), 400, "validation_error"
    )

    assert [(error["param"], error["code"]) for error in problem["errors"]] == [
        ("url", "url_invalid"),
        ("events[0]", "validation_error"),
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://[::1]/hooks",
        "https://[::ffff:10.0.0.1]/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/",
        "https://does-not-exist.invalid/hooks",
    ],
)
async def test_http_or_an_internal_or_unresolvable_host_answers_422_url_not_allowed(
    strict: Gateway, url: str
) -> None:
    assert_problem(await create(strict, {"url": url}), 422, "url_not_allowed")


async def test_deleting_answers_204_and_the_endpoint_is_gone(gateway: Gateway) -> None:
    endpoint = await created(gateway)
    path = f"/webhook-endpoints/{endpoint['id']}"

    answer = await gateway.client.delete(path, headers=gateway.headers())

    assert (answer.status_code, answer.content) == (204, b"")
    assert_problem(await gateway.get(path), 404, "not_found")
    assert_problem(await gateway.client.delete(path, headers=gateway.headers()), 404, "not_found")
    assert (await gateway.get("/webhook-endpoints")).json()["data"] == []


async def test_rotating_answers_the_endpoint_with_a_new_secret(gateway: Gateway) -> None:
    endpoint = await created(gateway)

    answer = await gateway.client.post(
        f"/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=gateway.headers()
    )

    assert answer.status_code == 200
    rotated = answer.json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != endpoint["secret"]
    assert {k: v for k, v in rotated.items() if k != "secret"} == {
        k: v for k, v in endpoint.items() if k != "secret"
    }


async def test_another_merchants_endpoints_and_events_are_not_found(gateway: Gateway) -> None:
    endpoint = await created(gateway)
    await gateway.settled_payment()
    (event,) = (await gateway.get("/events")).json()["data"]
    other = await gateway.new_api_key()
    client, headers = gateway.client, gateway.headers(api_key=other)
    base = f"/webhook-endpoints/{endpoint['id']}"

    answers = [
        await gateway.get(base, api_key=other),
        await gateway.get(f"{base}/deliveries", api_key=other),
        await client.delete(base, headers=headers),
        await client.post(f"{base}/rotate-secret", headers=headers),
        await gateway.get(f"/events/{event['id']}", api_key=other),
        await client.post(f"/events/{event['id']}/redeliver", headers=headers),
    ]

    for answer in answers:
        assert_problem(answer, 404, "not_found")
    assert (await gateway.get("/events", api_key=other)).json()["data"] == []
    assert (await gateway.get("/webhook-endpoints", api_key=other)).json()["data"] == []


async def test_an_event_carries_the_payment_as_get_payments_shows_it(gateway: Gateway) -> None:
    payment = await gateway.settled_payment()

    listed = (await gateway.get("/events")).json()
    (event,) = listed["data"]
    one = (await gateway.get(f"/events/{event['id']}")).json()

    assert set(event) == {"id", "type", "created_at", "data"}
    assert event["type"] == "payment.authorized"
    assert event["data"] == payment
    assert "number" not in event["data"]["card"]
    assert one == event
    assert (listed["has_more"], listed["next"]) == (False, None)


async def test_events_filter_by_type_and_payment(gateway: Gateway) -> None:
    authorized = await gateway.settled_payment()
    declined = await gateway.settled_payment("4000000000000002")

    by_type = (await gateway.get("/events", type="payment.declined")).json()["data"]
    by_payment = (await gateway.get("/events", payment_id=authorized["id"])).json()["data"]
    page = (await gateway.get("/events", limit="1", type="payment.authorized")).json()

    assert [e["data"]["id"] for e in by_type] == [declined["id"]]
    assert [e["type"] for e in by_payment] == ["payment.authorized"]
    assert page["has_more"] is False
    first = (await gateway.get("/events", limit="1")).json()
    assert first["next"] == f"/events?starting_after={first['data'][0]['id']}&limit=1"


@pytest.mark.parametrize(
    "params",
    [{"type": "payment.refunded"}, {"limit": "0"}, {"limit": "x"}, {"starting_after": "pay_1"}],
)
async def test_invalid_event_filters_answer_400(gateway: Gateway, params: dict[str, str]) -> None:
    assert_problem(await gateway.get("/events", **params), 400, "validation_error")


async def test_the_delivery_log_lists_every_attempt(gateway: Gateway) -> None:
    endpoint = await created(gateway)  # nothing listens: the attempt fails
    await gateway.settled_payment()
    path = f"/webhook-endpoints/{endpoint['id']}/deliveries"

    log = await _eventually_one_attempt(gateway, path)

    (attempt,) = log["data"]
    assert set(attempt) == {
        "id",
        "event_id",
        "attempt",
        "status_code",
        "error",
        "duration_ms",
        "attempted_at",
        "next_attempt_at",
    }
    (event,) = (await gateway.get("/events")).json()["data"]
    assert (attempt["event_id"], attempt["attempt"], attempt["status_code"]) == (
        event["id"],
        1,
        None,
    )
    assert attempt["error"].startswith("connection_failed")
    assert attempt["next_attempt_at"] is not None  # retried later
    assert_problem(await gateway.get(path, limit="500"), 400, "validation_error")
    assert_problem(await gateway.get("/webhook-endpoints/we_nope/deliveries"), 404, "not_found")


async def _eventually_one_attempt(gateway: Gateway, path: str) -> dict[str, Any]:
    for _ in range(200):
        log: dict[str, Any] = (await gateway.get(path)).json()
        if log["data"]:
            return log
        await asyncio.sleep(0.02)
    raise AssertionError("no attempt was logged")


async def test_redelivering_answers_202_with_what_was_scheduled(gateway: Gateway) -> None:
    endpoint = await created(gateway)
    await created(gateway, events=["payment.declined"])  # not subscribed
    await gateway.settled_payment()
    (event,) = (await gateway.get("/events")).json()["data"]

    answer = await gateway.client.post(
        f"/events/{event['id']}/redeliver", headers=gateway.headers()
    )

    assert answer.status_code == 202
    body = answer.json()
    assert body["event_id"] == event["id"]
    assert [(d["endpoint_id"], d["status"]) for d in body["deliveries"]] == [
        (endpoint["id"], "pending")
    ]
    assert_problem(
        await gateway.client.post("/events/evt_nope/redeliver", headers=gateway.headers()),
        404,
        "not_found",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/webhook-endpoints"),
        ("GET", "/webhook-endpoints"),
        ("GET", "/webhook-endpoints/we_1"),
        ("DELETE", "/webhook-endpoints/we_1"),
        ("POST", "/webhook-endpoints/we_1/rotate-secret"),
        ("GET", "/webhook-endpoints/we_1/deliveries"),
        ("GET", "/events"),
        ("GET", "/events/evt_1"),
        ("POST", "/events/evt_1/redeliver"),
    ],
)
async def test_every_webhook_route_needs_an_api_key(
    gateway: Gateway, method: str, path: str
) -> None:
    answer = await gateway.client.request(method, path)

    assert_problem(answer, 401, "authentication_required")


COMMON = {str(TITLES[code][0]) for code in COMMON_CODES}  # e.g. 401, 500
EXPECTED_STATUSES = {
    ("/webhook-endpoints", "post"): {"201", "400", "401", "413", "422", "500"},
    ("/webhook-endpoints", "get"): {"200", "400", "401", "500"},
    ("/webhook-endpoints/{endpoint_id}", "get"): {"200", "400", "401", "404", "500"},
    ("/webhook-endpoints/{endpoint_id}", "delete"): {"204", "400", "401", "404", "500"},
    ("/webhook-endpoints/{endpoint_id}/rotate-secret", "post"): {
        "200",
        "400",
        "401",
        "404",
        "500",
    },
    ("/webhook-endpoints/{endpoint_id}/deliveries", "get"): {"200", "400", "401", "404", "500"},
    ("/events", "get"): {"200", "400", "401", "500"},
    ("/events/{event_id}", "get"): {"200", "400", "401", "404", "500"},
    ("/events/{event_id}/redeliver", "post"): {"202", "400", "401", "404", "500"},
}


async def test_openapi_documents_every_status_of_the_webhook_routes(gateway: Gateway) -> None:
    paths = (await gateway.client.get("/docs/openapi.json")).json()["paths"]

    for (path, method), statuses in EXPECTED_STATUSES.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == statuses | COMMON, (path, method)
        assert operation["security"] == [{"apiKey": []}]
    create_body = paths["/webhook-endpoints"]["post"]["requestBody"]
    assert create_body["required"] is True
