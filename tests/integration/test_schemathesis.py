"""Schemathesis against /docs/openapi.json: every check, every phase, stateful included.

The app runs on a SQLite file with a valid API key and schemathesis drives it in-process
(ASGI, on an event loop of its own) through its engine, the same run as
`schemathesis run --checks all` with the examples, coverage, fuzzing and stateful phases.
Zero failures means: every status code is documented, every response matches its schema
and content type, schema-invalid requests are refused, nothing answers 5xx.

(The engine rather than `@schema.parametrize()`: the pytest plugin's fixture-based loader
does not run on pytest 9, and one run covers the stateful phase as well.)
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import Status, StopReason, events, from_schema
from schemathesis.python import asgi

from gateway import bootstrap
from gateway.config import Settings
from gateway.domain.commands import CreateMerchant
from gateway.entrypoints.http.app import create_app
from tests.integration.http_gateway import gateway_settings

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 100
STATEFUL_STEPS = 15
# What no JSON Schema can say (Luhn, expiry after today, the scheme's CVV length) is
# refused with 400; a generated Idempotency-Key may repeat with another body: 422.
PAYMENT_ACCEPTANCE = ["2xx", "400", "401", "409", "422", "429"]
# A webhook URL must be https and resolve to public addresses: 422 otherwise.
ENDPOINT_ACCEPTANCE = ["2xx", "401", "422", "429"]


def _settings(tmp_path: Path, card_key: bytes) -> Settings:
    # The limits stay on but out of reach: schemathesis calls without a valid key on
    # purpose (`ignored_auth`) and fast; 429 itself is documented and tested elsewhere.
    return gateway_settings(
        tmp_path, card_key=card_key, rate_limit_per_s=1e6, auth_failure_limit=1_000_000
    )


async def _merchant_key(container: bootstrap.Container) -> str:
    try:
        await bootstrap.migrate_database(container)
        issued = await container.mediator().send(CreateMerchant("schemathesis"))
        return issued.api_key.value
    finally:
        await container.engine().dispose()


def _accepting(operation_id: str, statuses: list[str]) -> dict[str, Any]:
    """Schema-valid requests to this operation may still be refused with `statuses`."""
    return {
        "include-operation-id": operation_id,
        "checks": {"positive_data_acceptance": {"expected-statuses": statuses}},
    }


def _config(api_key: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {api_key}"},
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
            "operations": [
                _accepting("requestPayment", PAYMENT_ACCEPTANCE),
                _accepting("createWebhookEndpoint", ENDPOINT_ACCEPTANCE),
            ],
        }
    )


def _failures(event: events.ScenarioFinished) -> list[str]:
    found = []
    for case_id, checks in event.recorder.checks.items():
        for check in checks:
            if check.status == Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                found.append(
                    f"[{event.phase}] {event.recorder.label} {check.name}: {failure.title}\n"
                    f"{failure.message}\n{check.failure_info.code_sample} ({case_id})"
                )
    return found


def _run(schema: Any) -> tuple[list[str], set[str], StopReason | None]:
    problems: list[str] = []
    phases: set[str] = set()
    stop_reason = None
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            problems += _failures(event)
        elif isinstance(event, events.NonFatalError):
            problems.append(f"error in {event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.PhaseFinished) and event.status != Status.SKIP:
            phases.add(event.phase.name.value)
        elif isinstance(event, events.EngineFinished):
            stop_reason = event.stop_reason
            problems += [f"{failure.title}: {failure.message}" for failure in event.failures]
    return problems, phases, stop_reason


def test_openapi_document_holds_under_every_schemathesis_check(tmp_path: Path) -> None:
    card_key = os.urandom(32)
    api_key = asyncio.run(_merchant_key(bootstrap.build(_settings(tmp_path, card_key))))
    app = create_app(bootstrap.build(_settings(tmp_path, card_key)), embedded_relay=True)
    try:
        schema = schemathesis.openapi.from_asgi("/docs/openapi.json", app, config=_config(api_key))
        problems, phases, stop_reason = _run(schema)
    finally:
        asgi.shutdown_lifespans()  # the app's lifespan runs on schemathesis's event loop

    assert not problems, "\n\n".join(dict.fromkeys(problems))
    assert stop_reason == StopReason.COMPLETED
    assert {"coverage", "fuzzing", "stateful"} <= phases
