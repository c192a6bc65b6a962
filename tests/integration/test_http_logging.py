"""Logs of the HTTP app: one JSON line per request, never a card number or a CVV."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from dependency_injector import providers

from gateway import bootstrap
from gateway.application.mediator import Mediator
from gateway.entrypoints.logging import configure_logging
from tests.integration.http_gateway import CVV, VISA, Gateway, payment_body, running_gateway

AMEX = "378282246310005"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    output = io.StringIO()
    configure_logging("DEBUG", output, cache_loggers=False)
    yield output
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


@pytest.fixture
async def gateway(tmp_path: Path, captured: io.StringIO) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path) as running:
        yield running


def _lines(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines() if line.strip()]


def _values(entry: object) -> Iterator[object]:
    if isinstance(entry, dict):
        for value in entry.values():
            yield from _values(value)
    elif isinstance(entry, list):
        for item in entry:
            yield from _values(item)
    else:
        yield entry


async def test_a_payment_leaves_no_card_number_or_cvv_in_the_logs(
    gateway: Gateway, captured: io.StringIO
) -> None:
    accepted = await gateway.pay(payment_body(VISA, reference=f"order for {VISA}"))
    job = await gateway.final_job(accepted.headers["location"])
    await gateway.get(job["links"]["payment"])
    await gateway.pay(payment_body(AMEX, card={"cvv": CVV}))  # invalid: 3-digit Amex CVV
    await gateway.client.post(
        "/payments", content=b"{" + VISA.encode(), headers=gateway.headers("k")
    )
    await gateway.get(f"/payments/{VISA}")

    text = captured.getvalue()
    assert text
    for number in (VISA, AMEX, "4242 4242 4242 4242"):
        assert number not in text
    for entry in _lines(captured):
        assert CVV not in [str(value) for value in _values(entry)]
        assert "cvv" not in entry
        assert "card" not in entry


async def test_each_request_logs_one_line_with_its_context(
    gateway: Gateway, captured: io.StringIO
) -> None:
    accepted = await gateway.pay()
    missing = await gateway.client.get("/nope?secret=1", headers={"X-Request-Id": "trace-9"})

    lines = [entry for entry in _lines(captured) if entry["event"] == "http_request"]
    first, second = lines[0], lines[-1]
    assert first["request_id"] == accepted.headers["x-request-id"]
    assert (first["method"], first["path"], first["status"]) == ("POST", "/payments", 202)
    assert first["merchant_id"].startswith("mer_")
    assert first["duration_ms"] >= 0
    assert first["level"] == "info"
    assert first["timestamp"].endswith("Z")
    assert (second["request_id"], second["path"], second["status"]) == ("trace-9", "/nope", 404)
    assert second["merchant_id"] is None
    assert missing.headers["x-request-id"] == "trace-9"
    assert len(lines) == 2


async def test_unexpected_exception_is_logged_with_its_request_id_and_redacted(
    tmp_path: Path, captured: io.StringIO
) -> None:
    class Exploding(Mediator):
        def __init__(self) -> None:
            pass

        async def send(self, command: object) -> Any:
            raise RuntimeError(f"boom {VISA}")

        async def ask(self, query: object) -> Any:
            raise RuntimeError(f"boom {VISA}")

    def explode(container: bootstrap.Container) -> None:
        container.mediator.override(providers.Object(Exploding()))

    async with running_gateway(tmp_path, before_app=explode) as gateway:
        response = await gateway.get("/payments")

    errors = [entry for entry in _lines(captured) if entry["event"] == "unhandled_exception"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == response.headers["x-request-id"]
    assert "RuntimeError: boom ************4242" in errors[0]["exception"]
    assert VISA not in captured.getvalue()


def test_redaction_masks_digit_runs_and_sensitive_keys(captured: io.StringIO) -> None:
    log = structlog.get_logger("test")
    log.info(
        "card seen 4111 1111 1111 1111",
        number=VISA,
        cvv="123",
        nested={"card_number": VISA, "note": f"pan={VISA}", "items": [5555555555554444]},
        authorization="Bearer sk_test_secret",
        amount=1050,
        reference="ORD-001",
    )
    logging.getLogger("stdlib").warning("stdlib line with %s", VISA)

    entry, stdlib = _lines(captured)
    assert entry["event"] == "card seen ************1111"
    assert entry["number"] == entry["cvv"] == entry["authorization"] == "[REDACTED]"
    assert entry["nested"] == {
        "card_number": "[REDACTED]",
        "note": "pan=************4242",
        "items": ["************4444"],
    }
    assert (entry["amount"], entry["reference"]) == (1050, "ORD-001")
    assert stdlib["event"] == "stdlib line with ************4242"
    assert stdlib["logger"] == "stdlib"
