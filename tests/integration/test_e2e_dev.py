"""`gateway dev` as a real process: a merchant takes payments over a socket, the pending
cards included (its in-process bank calls back to its own `/webhooks/bank`)."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time

import httpx

from tests.fixtures.processes import Process, Processes, free_port

CARD = "4242424242424242"
CVV = "987"
# The bank answers `202` for these; card → (status, decline_code, whether it calls back).
PENDING = {
    "4000000000003006": ("authorized", None, True),
    "4000000000003014": ("declined", "do_not_honor", True),
    "4000000000003048": ("authorized", None, False),  # settled by the status lookup
}
PENDING_TIMEOUT_S = 3


def _payment(number: str = CARD) -> dict[str, object]:
    card = {"number": number, "expiry_month": 12, "expiry_year": 2031, "cvv": CVV}
    return {"amount": 1050, "currency": "GBP", "card": card, "reference": "ORD-1"}


def _start_dev(
    processes: Processes, port: int, env: dict[str, str] | None = None
) -> tuple[Process, str]:
    """`gateway dev` on `port`, ready; with the API key its banner printed."""
    ready = f"http://127.0.0.1:{port}/health/ready"
    dev = processes.start("dev", "dev", "--port", str(port), env=env, ready=ready)
    key = re.search(r"sk_test_[A-Za-z0-9]{40}", dev.output())
    assert key is not None, dev.output()
    return dev, key.group()


def _wait_final(client: httpx.Client, job_url: str, timeout: float = 10) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, object] = client.get(job_url).json()
        if job["status"] != "created":
            return job
        time.sleep(0.05)
    raise AssertionError(f"{job_url} still created after {timeout}s")


def test_dev_takes_a_payment_end_to_end_and_keeps_no_card_data(processes: Processes) -> None:
    port = free_port()
    dev, key = _start_dev(processes, port)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "order-1"}

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        accepted = client.post("/payments", json=_payment())
        assert accepted.status_code == 202, accepted.text
        assert accepted.headers["location"] == f"/jobs/{accepted.json()['id']}"
        started = time.monotonic()
        job = _wait_final(client, accepted.headers["location"])
        assert time.monotonic() - started < 1.0
        assert job["status"] == "completed"
        payment = client.get(f"/payments/{job['payment_id']}").json()

    assert payment["status"] == "authorized"
    assert payment["card"] == {
        "scheme": "visa", "bin": "424242", "last4": "4242",
        "expiry_month": 12, "expiry_year": 2031, "holder_name": None,
    }  # fmt: skip
    dev.stop()
    database = (processes.workdir / "gateway.db").read_bytes()
    for path in processes.workdir.glob("gateway.db*"):
        assert CARD.encode() not in path.read_bytes()
    assert CARD.encode() not in database
    log_lines = [line for line in dev.output().splitlines() if line.startswith("{")]
    assert log_lines, "gateway dev wrote no JSON log lines"
    assert not [line for line in log_lines if CARD in line or f'"{CVV}"' in line]
    rows = sqlite3.connect(processes.workdir / "gateway.db").execute(
        "select count(*) from card_data"
    )
    assert rows.fetchone() == (0,)


def test_dev_settles_pending_cards_by_its_banks_callback_or_the_status_lookup(
    processes: Processes,
) -> None:
    port = free_port()
    env = {"GATEWAY_BANK_PENDING_TIMEOUT_S": str(PENDING_TIMEOUT_S)}
    dev, key = _start_dev(processes, port, env)

    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
    ) as client:
        started = time.monotonic()
        locations = {}
        for number in PENDING:
            headers = {"Idempotency-Key": f"order-{number}"}
            accepted = client.post("/payments", json=_payment(number), headers=headers)
            assert accepted.status_code == 202, accepted.text
            locations[number] = accepted.headers["location"]
        jobs = {n: _wait_final(client, location, timeout=20) for n, location in locations.items()}
        seconds = time.monotonic() - started
        payments = {
            n: client.get(f"/payments/{job['payment_id']}").json() for n, job in jobs.items()
        }
        events = {
            n: client.get("/events", params={"payment_id": payment["id"]}).json()["data"]
            for n, payment in payments.items()
        }
    callbacks = {
        payment_id: (kind, outcome)
        for payment_id, kind, outcome in sqlite3.connect(processes.workdir / "gateway.db").execute(
            "select payment_id, type, outcome from bank_callbacks"
        )
    }

    for number, (status, decline_code, calls_back) in PENDING.items():
        payment = payments[number]
        assert jobs[number]["status"] == "completed", number
        assert (payment["status"], payment["decline_code"]) == (status, decline_code), number
        event_type = f"payment.{status}"
        assert [(e["type"], e["data"]) for e in events[number]] == [(event_type, payment)], number
        if calls_back:  # recorded and applied: the callback settled it, not the lookup
            assert callbacks[payment["id"]] == (event_type, "applied"), number
        else:
            assert payment["id"] not in callbacks
    assert len(callbacks) == 2
    assert seconds >= PENDING_TIMEOUT_S  # 3048 waited for the timeout
    requests = [json.loads(line) for line in dev.output().splitlines() if line.startswith("{")]
    callback_statuses = [r["status"] for r in requests if r.get("path") == "/webhooks/bank"]
    assert callback_statuses == [200, 200]  # signed with the secret dev generated


def test_cli_commands_work_on_an_empty_database_in_any_order(processes: Processes) -> None:
    created = processes.run("merchants", "create", "Shop")
    assert created.returncode == 0, created.stderr
    merchant = httpx.Response(200, content=created.stdout).json()
    assert merchant["api_key"].startswith("sk_test_")
    second = processes.run("keys", "create", merchant["merchant_id"])
    assert second.returncode == 0, second.stderr
    revoked = processes.run("keys", "revoke", merchant["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    listed = processes.run("keys", "list", merchant["merchant_id"])
    lines = [httpx.Response(200, content=line).json() for line in listed.stdout.splitlines()]
    assert {line["revoked"] for line in lines} == {True, False}
    assert all("api_key" not in line and merchant["api_key"] not in str(line) for line in lines)
    missing = processes.run("keys", "list", "mer_nope")
    assert missing.returncode != 0
    assert len(missing.stderr.strip().splitlines()) == 1


def test_bad_configuration_stops_start_up_with_one_line_naming_the_variable(
    processes: Processes,
) -> None:
    result = processes.run("migrate", env={"GATEWAY_DATABASE_URL": "mysql://nope"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gateway: GATEWAY_DATABASE_URL must be a URL starting with"
        " sqlite+aiosqlite:// or postgresql+asyncpg://"
    ]


def test_a_bank_callback_url_without_a_secret_stops_start_up_with_one_line(
    processes: Processes,
) -> None:
    env = {"GATEWAY_BANK_WEBHOOK_URL": "http://127.0.0.1:8000/webhooks/bank"}
    result = processes.run("bank-simulator", "--port", str(free_port()), env=env)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gateway: GATEWAY_BANK_WEBHOOK_SECRET must be set when GATEWAY_BANK_WEBHOOK_URL is:"
        " the bank signs its callbacks with it"
    ]


def test_a_payment_accepted_before_a_crash_is_processed_after_the_restart(
    processes: Processes,
) -> None:
    port = free_port()
    ready = f"http://127.0.0.1:{port}/health/ready"
    slow_bank = {"GATEWAY_BANK_LATENCY_MS": "5000"}  # still at the bank when the kill comes
    dev, key = _start_dev(processes, port, slow_bank)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "order-crash"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        accepted = client.post("/payments", json=_payment())
        assert accepted.status_code == 202, accepted.text
        assert client.get(accepted.headers["location"]).json()["status"] == "created"

    dev.signal(signal.SIGKILL)
    dev.popen.wait(timeout=10)
    restarted = processes.start("dev", "dev", "--port", str(port), ready=ready)

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        job = _wait_final(client, accepted.headers["location"], timeout=20)
        payment = client.get(f"/payments/{job['payment_id']}").json()
        replay = client.post("/payments", json=_payment())
    assert job["status"] == "completed"
    assert payment["status"] == "authorized"
    assert replay.json()["id"] == accepted.json()["id"], "the same payment, not a second one"
    restarted.stop()
    count = sqlite3.connect(processes.workdir / "gateway.db").execute(
        "select count(*) from payments"
    )
    assert count.fetchone() == (1,)
