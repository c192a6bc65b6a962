"""Problem details for framework errors, request ids, health, metrics and the API docs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from gateway import bootstrap
from gateway.adapters.rabbitmq_topology import Topology
from gateway.application.mediator import Mediator
from gateway.entrypoints.http.app import create_app
from tests.integration.http_gateway import (
    Gateway,
    assert_problem,
    gateway_settings,
    running_gateway,
    serving,
)

SECRET = "boom 4242424242424242 cvv=987"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path) as running:
        yield running


@pytest.mark.parametrize("path", ["/nope", "/payments/a/b", "/jobs", "/health", "/docs/nope"])
async def test_unknown_route_is_a_not_found_problem(gateway: Gateway, path: str) -> None:
    assert_problem(await gateway.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/payments"),
        ("PUT", "/payments"),
        ("POST", "/jobs/job_1"),
        ("POST", "/health/live"),
    ],
)
async def test_unsupported_method_is_a_method_not_allowed_problem(
    gateway: Gateway, method: str, path: str
) -> None:
    response = await gateway.client.request(method, path, headers=gateway.headers())

    assert_problem(response, 405, "method_not_allowed")


async def test_client_request_id_is_echoed_on_success_and_in_problems(gateway: Gateway) -> None:
    ok = await gateway.client.get("/health/live", headers={"X-Request-Id": "trace-42"})
    failed = await gateway.client.get("/nope", headers={"X-Request-Id": "trace-43"})

    assert ok.headers["x-request-id"] == "trace-42"
    assert assert_problem(failed, 404, "not_found")["request_id"] == "trace-43"


@pytest.mark.parametrize("sent", [None, b"", b"x" * 201, b"bad\x01id", "é".encode("latin-1")])
async def test_missing_or_unusable_request_id_is_replaced_by_a_fresh_one(
    gateway: Gateway, sent: bytes | None
) -> None:
    headers = [] if sent is None else [(b"x-request-id", sent)]
    first = await gateway.client.get("/health/live", headers=headers)
    second = await gateway.client.get("/health/live", headers=headers)

    assert re.fullmatch(r"req_[0-9a-f]{24}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


class _ExplodingMediator(Mediator):
    def __init__(self) -> None:
        pass

    async def send(self, command: object) -> Any:
        raise RuntimeError(SECRET)

    async def ask(self, query: object) -> Any:
        raise RuntimeError(SECRET)


async def test_unexpected_exception_is_a_generic_500_problem(tmp_path: Path) -> None:
    def explode(container: bootstrap.Container) -> None:
        container.mediator.override(providers.Object(_ExplodingMediator()))

    async with running_gateway(tmp_path, before_app=explode) as gateway:
        responses = [await gateway.get("/payments"), await gateway.pay()]

    for response in responses:
        problem = assert_problem(response, 500, "internal_error")
        assert problem["title"] == "Internal server error"
        assert "boom" not in response.text
        assert "4242" not in response.text
        assert "Traceback" not in response.text


async def test_health_endpoints_answer_ok(gateway: Gateway) -> None:
    for path in ["/health/live", "/health/ready"]:
        response = await gateway.client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


async def test_ready_is_503_problem_when_the_database_does_not_answer(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'g.db'}"
    container = bootstrap.build(gateway_settings(tmp_path, database_url=url))

    async with serving(create_app(container)) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")

    assert live.status_code == 200
    problem = assert_problem(ready, 503, "not_ready")
    assert "database" in problem["detail"]
    assert int(ready.headers["retry-after"]) > 0


async def test_ready_includes_a_configured_broker_that_answers(
    tmp_path: Path, amqp_url: str, topology: Topology
) -> None:
    settings = {"broker_url": amqp_url, "queue_prefix": topology.prefix}

    async with running_gateway(tmp_path, settings) as gateway:
        ready = await gateway.client.get("/health/ready")

    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}


async def test_ready_is_503_problem_when_the_configured_broker_does_not_answer(
    tmp_path: Path,
) -> None:
    settings = {"broker_url": "amqp://guest:guest@127.0.0.1:1/"}

    async with running_gateway(tmp_path, settings) as gateway:
        ready = await gateway.client.get("/health/ready")

    problem = assert_problem(ready, 503, "not_ready")
    assert problem["detail"] == "not answering: broker"


async def test_metrics_count_requests_by_route_template_and_status(gateway: Gateway) -> None:
    await gateway.get("/jobs/job_nope")
    await gateway.get("/nope/4111111111111111")

    response = await gateway.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'gateway_http_requests_total{method="GET",route="/jobs/{job_id}",status="404"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "gateway_http_request_duration_seconds_bucket" in text
    assert "4111111111111111" not in text


async def test_docs_page_is_served(gateway: Gateway) -> None:
    response = await gateway.client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in response.text


EXPECTED_STATUSES = {
    ("/payments", "post"): {"202", "400", "401", "409", "413", "422", "429", "500", "503"},
    ("/payments", "get"): {"200", "400", "401", "429", "500", "503"},
    ("/payments/{payment_id}", "get"): {"200", "400", "401", "404", "429", "500", "503"},
    ("/jobs/{job_id}", "get"): {"200", "400", "401", "404", "429", "500", "503"},
    ("/health/ready", "get"): {"200", "503"},
}


async def test_openapi_document_lists_every_status_with_problem_schema(gateway: Gateway) -> None:
    document = (await gateway.client.get("/docs/openapi.json")).json()

    paths = document["paths"]
    for (path, method), statuses in EXPECTED_STATUSES.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == statuses, (path, method)
        assert operation["operationId"]
        for status in statuses - {"200", "202"}:
            content = operation["responses"][status]["content"]
            assert content == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["apiKey"]["description"],
    }
    assert paths["/payments"]["post"]["security"] == [{"apiKey": []}]
    assert "security" not in paths["/health/live"]["get"]
    post = paths["/payments"]["post"]
    assert post["requestBody"]["required"] is True
    assert {p["name"]: p["required"] for p in post["parameters"]} == {"Idempotency-Key": True}
