"""m. After every scenario: no card number or CVV of the tests anywhere it could have
leaked to — `pg_dump` of every scenario's database, every message the gateway published
(a copy captured by a queue bound next to its own), every process log, every webhook body
received — and no card data left for a final payment. Runs last (conftest.py sees to it):
the scenarios' evidence is kept until now."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import aio_pika
import pytest

from tests.faults.load import ALL_CARDS, CVVS
from tests.faults.oracle import FINAL
from tests.faults.results import Row
from tests.faults.scan import Evidence, Findings, find_card_data
from tests.fixtures.faults import connected

PG_DUMP = ("pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--no-owner")


def dump(database: str) -> str:
    done = subprocess.run([*PG_DUMP, database], capture_output=True, text=True, check=True)
    return done.stdout


async def captured(broker_url: str, queue_name: str) -> list[str]:
    """Every captured message, body and headers, as text."""
    texts = []
    connection = await aio_pika.connect(broker_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            headers = f"{message.headers!r} {message.message_id} {message.type}"
            texts.append(message.body.decode(errors="replace") + headers)
    return texts


async def card_rows_of_final_payments(database: str) -> int:
    async with connected(database) as db:
        count: int = await db.fetchval(
            "SELECT count(*) FROM card_data c JOIN payments p ON p.id = c.payment_id"
            " WHERE p.status = ANY($1)",
            list(FINAL),
        )
    return count


async def test_no_card_data_is_left_in_dumps_messages_or_logs(
    evidence: Evidence, record: Callable[..., Row]
) -> None:
    if not evidence.databases:
        pytest.skip("no scenario ran in this session: nothing to scan")
    row = record(
        "m",
        "Card-data scan",
        load=f"{len(evidence.databases)} scenario databases, their broker messages and"
        f" {len(evidence.logs)} process logs",
        faults="none (the scan after every scenario)",
    )
    found = Findings()
    dumped = messages = card_rows = 0
    for database in evidence.databases:
        text = dump(database)
        dumped += len(text)
        found.hits += find_card_data(text, ALL_CARDS, CVVS, f"pg_dump {database}").hits
        card_rows += await card_rows_of_final_payments(database)
    for queue in evidence.captures:
        for text in await captured(evidence.broker_url, queue):
            messages += 1
            found.hits += find_card_data(text, ALL_CARDS, CVVS, f"message on {queue}").hits
    logged = 0
    for log in evidence.logs:
        text = log.read_text(errors="replace")
        logged += len(text)
        found.hits += find_card_data(text, ALL_CARDS, CVVS, log.name).hits
    row.card_data_found = len(found) + card_rows
    row.measure(
        dump_bytes=dumped,
        messages_scanned=messages,
        log_bytes=logged,
        card_rows_of_final_payments=card_rows,
        hits=found.hits[:10],
    )

    assert messages > 0
    assert dumped > 0
    assert found.hits == []
    assert card_rows == 0
