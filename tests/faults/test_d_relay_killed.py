"""d. The relay is killed after the broker confirmed a batch and before the rows were
marked sent: the batch is published again, and the consumers must not care.

A statement trigger (in this scenario's own database) makes the relay's `UPDATE outbox`
sleep, which holds the relay exactly in that window; it is SIGKILLed there.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import aio_pika

from tests.faults.load import burst, orders
from tests.faults.oracle import conclude
from tests.faults.results import Row
from tests.fixtures.faults import Stack, connected, kill, wait_for_log

PAYMENTS = 200
SLOW_MARK_SENT = """
CREATE FUNCTION slow_mark_sent() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
CREATE TRIGGER slow_mark_sent BEFORE UPDATE ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION slow_mark_sent();
"""
MARKING_SENT = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND state = 'active' AND query ILIKE 'UPDATE outbox%'"
)


async def wait_until_marking_sent(stack: Stack, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with connected(stack.database) as db:
        while not await db.fetchval(MARKING_SENT):
            assert time.monotonic() < deadline, "the relay never tried to mark rows sent"
            await asyncio.sleep(0.05)


async def published_copies(broker_url: str, queue_name: str) -> Counter[str]:
    """How often each message id reached the capture queue (read without consuming)."""
    seen: Counter[str] = Counter()
    connection = await aio_pika.connect(broker_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        while (message := await queue.get(fail=False)) is not None:
            seen[message.message_id or ""] += 1
        await channel.close()  # nothing was acked: every message goes back
    return seen


async def test_a_relay_killed_between_confirm_and_mark_sent_duplicates_but_never_double_charges(
    stack: Stack, record: Callable[..., Row]
) -> None:
    stack.up()
    row = record(
        "d",
        "Relay killed after confirms",
        load=f"{PAYMENTS} payments queued in the outbox, published as one batch",
        faults="SIGKILL of the relay after the broker confirmed the batch, before the rows"
        " were marked sent; a new relay publishes the batch again",
    )
    relay = next(p for p in stack.processes.started if p.name == "relay")
    relay.stop()
    async with connected(stack.database) as db:
        await db.execute(SLOW_MARK_SENT)
    async with stack.client() as client:
        answers = await burst(client, PAYMENTS, orders("d"))
    wait_for_log(stack.start_relay(), "relay_started")
    await wait_until_marking_sent(stack)
    kill(next(p for p in reversed(stack.processes.started) if p.name == "relay"))
    async with connected(stack.database) as db:  # end the killed relay's sleeping transaction
        await db.execute(MARKING_SENT.replace("count(*)", "pg_terminate_backend(pid)"))
        await db.execute("DROP TRIGGER slow_mark_sent ON outbox")
    wait_for_log(stack.start_relay(), "relay_started")

    accepted = [a.payment_id for a in answers.accepted]
    verdict = await conclude(stack, row, accepted, 60, answers)
    copies = await published_copies(stack.broker_url, f"{stack.prefix}.capture")
    row.measure(messages_published_twice=sum(count > 1 for count in copies.values()))

    assert len(accepted) == PAYMENTS, answers.statuses
    assert row.measurements["messages_published_twice"] == PAYMENTS
    assert verdict.ok, verdict
    assert row.card_data_found == 0
