"""The bank simulator's book: what each idempotency key asked for and what the bank answered.

Card data never stays here: a request keeps its last four digits and a keyed fingerprint
(used only to spot a key reused for another request).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Script(enum.Enum):
    """How the bank behaves for a card (the test-card table of API.md)."""

    AUTHORIZE = "authorize"
    DECLINE = "decline"
    FAIL = "fail"
    DROP = "drop"
    HANG = "hang"
    LATE_AUTHORIZE = "late_authorize"
    LATE_DECLINE = "late_decline"
    SILENT = "silent"


DECLINES = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
}
SCRIPTS = {
    "4000000000000119": Script.FAIL,
    "4000000000003022": Script.DROP,
    "4000000000003030": Script.HANG,
    "4000000000003006": Script.LATE_AUTHORIZE,
    "4000000000003014": Script.LATE_DECLINE,
    "4000000000003048": Script.SILENT,
} | dict.fromkeys(DECLINES, Script.DECLINE)
LATE_DECLINE_CODE = "do_not_honor"
EXAMPLE_CARD = "4242424242424242"  # a Visa test card the simulator authorizes

_CARD = re.compile(r"[0-9]{12,19}")
_CVV = re.compile(r"[0-9]{3,4}")
_EXPIRY = re.compile(r"(0[1-9]|1[0-2])/[0-9]{4}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_KEY = re.compile(r"[\x20-\x7e]{1,255}")


@dataclass(frozen=True, slots=True)
class Charge:
    """A valid payment request, without its card data."""

    amount: int
    currency: str
    last4: str
    fingerprint: str
    script: Script
    decline_code: str


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: str  # authorized | declined | pending
    code: str = ""  # the authorization code or the decline code

    @property
    def status(self) -> int:
        return 202 if self.outcome == "pending" else 200

    @property
    def body(self) -> dict[str, Any]:
        if self.outcome == "authorized":
            return {"authorized": True, "authorization_code": self.code}
        if self.outcome == "declined":
            return {"authorized": False, "authorization_code": "", "decline_code": self.code}
        return {"status": "pending"}


PENDING = Answer("pending")


def authorized() -> Answer:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return Answer("authorized", "".join(secrets.choice(alphabet) for _ in range(6)))


@dataclass(slots=True)
class Entry:
    key: str
    charge: Charge
    calls: int = 0
    answer: Answer | None = None

    def row(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.key,
            "amount": self.charge.amount,
            "currency": self.charge.currency,
            "last4": self.charge.last4,
            "outcome": self.answer.outcome if self.answer else "failed",
            "calls": self.calls,
        }


def valid_key(key: str | None) -> bool:
    return key is not None and _KEY.fullmatch(key) is not None


class Ledger:
    """Per-app state: every key the bank has seen. Not shared between apps."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._secret = secrets.token_bytes(32)

    def parse(self, raw: bytes) -> Charge | str:
        """The request as a `Charge`, or a message saying what is wrong with it."""
        try:
            body = json.loads(raw)
        except ValueError:
            return "the body is not valid JSON"
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        problems = _problems(body)
        if problems:
            return "invalid " + ", ".join(problems)
        number: str = body["card_number"]
        canonical = json.dumps([body[name] for name in sorted(_FIELDS)]).encode()
        return Charge(
            amount=body["amount"],
            currency=body["currency"],
            last4=number[-4:],
            fingerprint=hmac.new(self._secret, canonical, hashlib.sha256).hexdigest(),
            script=SCRIPTS.get(number, Script.AUTHORIZE),
            decline_code=DECLINES.get(number, ""),
        )

    def receive(self, key: str, charge: Charge) -> tuple[Entry, bool]:
        """Counts a call for `key`; the entry and whether this is its first call."""
        entry = self._entries.setdefault(key, Entry(key, charge))
        entry.calls += 1
        return entry, entry.calls == 1

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def rows(self) -> list[dict[str, Any]]:
        return [entry.row() for entry in self._entries.values()]


_FIELDS: dict[str, Callable[[Any], bool]] = {
    "card_number": lambda v: isinstance(v, str) and _CARD.fullmatch(v) is not None,
    "expiry_date": lambda v: isinstance(v, str) and _EXPIRY.fullmatch(v) is not None,
    "currency": lambda v: isinstance(v, str) and _CURRENCY.fullmatch(v) is not None,
    "amount": lambda v: type(v) is int and v > 0,
    "cvv": lambda v: isinstance(v, str) and _CVV.fullmatch(v) is not None,
}


def _problems(body: dict[str, Any]) -> list[str]:
    return [name for name, is_valid in _FIELDS.items() if not is_valid(body.get(name))]
