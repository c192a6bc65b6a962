"""GET /payments over HTTP: newest first, cursor pagination, filters, invalid parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.http_gateway import Gateway, assert_problem, payment_body, running_gateway

DECLINED = "4000000000000002"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path) as running:
        yield running


async def _accept(gateway: Gateway, count: int, **fields: Any) -> list[str]:
    payment_ids = []
    for _ in range(count):
        response = await gateway.pay(payment_body(**fields))
        assert response.status_code == 202, response.text
        payment_ids.append(response.json()["payment_id"])
    return payment_ids


async def test_pages_follow_next_links_newest_first(gateway: Gateway) -> None:
    created = await _accept(gateway, 5)
    seen: list[str] = []
    path: str | None = "/payments?limit=2"
    pages = []
    while path is not None:
        page = (await gateway.get(path)).json()
        assert page.keys() == {"data", "has_more", "next"}
        pages.append(page)
        seen += [payment["id"] for payment in page["data"]]
        path = page["next"]

    assert seen == list(reversed(created))
    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert pages[0]["next"] == f"/payments?starting_after={seen[1]}&limit=2"


async def test_default_page_is_20_and_next_carries_the_limit(gateway: Gateway) -> None:
    await _accept(gateway, 21)

    page = (await gateway.get("/payments")).json()

    assert len(page["data"]) == 20
    assert page["has_more"] is True
    assert page["next"] == f"/payments?starting_after={page['data'][-1]['id']}&limit=20"


async def test_status_filter_keeps_only_that_status_and_stays_in_next(gateway: Gateway) -> None:
    declined = await gateway.settled_payment(DECLINED)
    authorized = [(await gateway.settled_payment())["id"] for _ in range(2)]

    page = (await gateway.get("/payments", status="authorized", limit="1")).json()
    rest = (await gateway.get(page["next"])).json()
    only_declined = (await gateway.get("/payments", status="declined")).json()

    assert parse_qs(urlsplit(page["next"]).query)["status"] == ["authorized"]
    assert [p["id"] for p in page["data"] + rest["data"]] == list(reversed(authorized))
    assert rest["next"] is None
    assert [p["id"] for p in only_declined["data"]] == [declined["id"]]


async def test_reference_filter_is_exact_and_url_encoded_in_next(gateway: Gateway) -> None:
    reference = "ORD 1&2/é"
    wanted = await _accept(gateway, 2, reference=reference)
    await _accept(gateway, 1, reference="ORD 1")

    page = (await gateway.get("/payments", reference=reference, limit="1")).json()
    rest = (await gateway.get(page["next"])).json()

    assert "ORD%201%262%2F%C3%A9" in page["next"]
    assert parse_qs(urlsplit(page["next"]).query)["reference"] == [reference]
    assert [p["id"] for p in page["data"] + rest["data"]] == list(reversed(wanted))
    assert all(p["reference"] == reference for p in page["data"] + rest["data"])


async def test_list_shows_payments_with_their_current_status(gateway: Gateway) -> None:
    payment = await gateway.settled_payment()

    listed = (await gateway.get("/payments")).json()["data"]

    assert listed == [payment]


@pytest.mark.parametrize(
    ("params", "invalid"),
    [
        ({"limit": "0"}, ["limit"]),
        ({"limit": "101"}, ["limit"]),
        ({"limit": "ten"}, ["limit"]),
        ({"limit": "-1"}, ["limit"]),
        ({"status": "settled"}, ["status"]),
        ({"starting_after": "job_01J0"}, ["starting_after"]),
        ({"reference": "x" * 51}, ["reference"]),
        ({"limit": "1000", "status": "nope"}, ["limit", "status"]),
    ],
)
async def test_invalid_parameters_are_each_reported(
    gateway: Gateway, params: dict[str, str], invalid: list[str]
) -> None:
    problem = assert_problem(await gateway.get("/payments", **params), 400, "validation_error")

    assert [error["param"] for error in problem["errors"]] == invalid
    assert all(error["code"] == "validation_error" for error in problem["errors"])


async def test_unknown_job_and_payment_are_not_found(gateway: Gateway) -> None:
    for path in ["/jobs/job_nope", "/payments/pay_nope", "/payments/%20"]:
        assert_problem(await gateway.get(path), 404, "not_found")
