"""The oracle that judges what a fault scenario did to its load.

The database says what the gateway decided; the bank simulator's ledger says what was
charged. A scenario passes when every accepted payment is final, the outbox is drained,
no order was charged twice, the gateway and the bank agree, and no card data is left.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from tests.faults.load import ALL_CARDS, CVVS, Answers
from tests.faults.results import Row
from tests.faults.scan import find_card_data
from tests.fixtures.faults import Stack, connected, cpu_seconds

FINAL = ("authorized", "declined", "failed")
JOB_OF = {"authorized": "completed", "declined": "completed", "failed": "failed"}


async def settle(stack: Stack, payment_ids: Collection[str], timeout_s: float) -> float:
    """Waits until every payment and its job are final and the outbox is drained; the
    seconds it took (or `timeout_s` when it did not happen)."""
    started = time.monotonic()
    ids = list(payment_ids)
    async with connected(stack.database) as db:
        while time.monotonic() - started < timeout_s:
            done = await db.fetchval(
                "SELECT count(*) FROM payments p JOIN jobs j ON j.payment_id = p.id"
                " WHERE p.id = ANY($1) AND p.status = ANY($2) AND j.status <> 'created'",
                ids,
                list(FINAL),
            )
            unsent = await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            if done == len(ids) and unsent == 0:
                return time.monotonic() - started
            await asyncio.sleep(0.2)
    return timeout_s


@dataclass
class Verdict:
    accepted: int
    final: int
    lost: int
    charged_twice: int
    disagreements: int
    unsent: int
    card_rows: int
    statuses: dict[str, int]
    bank_calls_repeated: int

    @property
    def ok(self) -> bool:
        clean = self.charged_twice == self.disagreements == self.unsent == self.card_rows == 0
        return clean and self.lost == 0 and self.final == self.accepted

    def fill(self, row: Row) -> None:
        row.accepted, row.final, row.lost = self.accepted, self.final, self.lost
        row.charged_twice = self.charged_twice
        row.card_data_found += self.card_rows
        row.measure(
            outcomes=self.statuses,
            gateway_and_bank_disagree=self.disagreements,
            outbox_unsent=self.unsent,
            bank_keys_called_more_than_once=self.bank_calls_repeated,
        )


async def judge(stack: Stack, accepted: Collection[str]) -> Verdict:
    """The verdict on the payments accepted (their ids), against the bank's ledger."""
    async with connected(stack.database) as db:
        rows = await db.fetch(
            "SELECT p.id, p.status, p.reference, j.status AS job FROM payments p"
            " JOIN jobs j ON j.payment_id = p.id"
        )
        unsent = await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        card_rows = await db.fetchval(
            "SELECT count(*) FROM card_data c JOIN payments p ON p.id = c.payment_id"
            " WHERE p.status = ANY($1)",
            list(FINAL),
        )
    payments = {row["id"]: row for row in rows}
    ledger = await stack.ledger()
    final = {
        pid for pid in accepted
        if pid in payments and JOB_OF.get(payments[pid]["status"]) == payments[pid]["job"]
    }  # fmt: skip
    return Verdict(
        accepted=len(set(accepted)),
        final=len(final),
        lost=len(set(accepted) - final),
        charged_twice=_charged_twice(payments, ledger),
        disagreements=_disagreements(payments, ledger),
        unsent=unsent,
        card_rows=card_rows,
        statuses=dict(Counter(payments[pid]["status"] for pid in final)),
        bank_calls_repeated=sum(row["calls"] > 1 for row in ledger.values()),
    )


def _charged_twice(payments: dict[str, Any], ledger: dict[str, dict[str, Any]]) -> int:
    """Orders (references) charged under more than one key, plus charges for no payment."""
    charged = [key for key, row in ledger.items() if row["outcome"] == "authorized"]
    unknown = sum(key not in payments for key in charged)
    per_order = Counter(payments[key]["reference"] for key in charged if key in payments)
    return unknown + sum(count > 1 for count in per_order.values())


def _disagreements(payments: dict[str, Any], ledger: dict[str, dict[str, Any]]) -> int:
    unseen = [p for key, p in payments.items() if key not in ledger]
    answered = sum(p["status"] in ("authorized", "declined") for p in unseen)
    return answered + sum(_disagree(payments.get(key), row) for key, row in ledger.items())


def _disagree(payment: Any, row: dict[str, Any]) -> bool:
    """The bank's outcome and the gateway's differ (a charge the merchant was told failed)."""
    if payment is None:
        return row["outcome"] in ("authorized", "declined")
    bank, gateway = row["outcome"], payment["status"]
    if bank in ("authorized", "declined"):
        return gateway != bank
    return gateway in ("authorized", "declined")


async def conclude(
    stack: Stack,
    row: Row,
    accepted: Collection[str],
    timeout_s: float,
    answers: Answers | None = None,
) -> Verdict:
    """Lets the system settle, judges it, scans the logs; fills in `row`."""
    if answers is not None:
        row.measure(http_answers=dict(answers.statuses), requests_unanswered=dict(answers.errors))
    row.measure(settle_s=round(await settle(stack, accepted, timeout_s), 2))
    row.measure(cpu_s=cpu_by_process(stack))
    verdict = await judge(stack, accepted)
    verdict.fill(row)
    logs = [(process.name, process.output()) for process in stack.processes.started]
    leaks = [find_card_data(text, ALL_CARDS, CVVS, name) for name, text in logs]
    row.card_data_found += sum(len(found) for found in leaks)
    row.measure(card_data_in_logs=[hit for found in leaks for hit in found.hits][:10])
    return verdict


def cpu_by_process(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by the processes still running, by name."""
    used: Counter[str] = Counter()
    for process in stack.processes.started:
        if process.popen.poll() is None:
            used[process.name] += cpu_seconds(process)
    return {name: round(seconds, 1) for name, seconds in used.items()}
