"""Looking for card data where it must never be: database dumps, broker messages, logs.

A hit is a Luhn-valid run of 13–19 digits that is one of the test cards used, a test card
anywhere inside a longer run of digits, or one of the CVVs used as a `cvv` value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
_CVV_VALUE = re.compile(r"""["']?cvv["']?\s*[:=]\s*["']?(\d{3,4})(?!\d)""", re.IGNORECASE)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


@dataclass
class Evidence:
    """Where card data could have leaked to, scanned at the end of the session."""

    broker_url: str
    databases: list[str] = field(default_factory=list)
    captures: list[str] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)


@dataclass
class Findings:
    hits: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.hits)


def find_card_data(
    text: str, cards: Iterable[str], cvvs: Iterable[str], where: str = ""
) -> Findings:
    """Every card number and CVV of the tests found in `text`, labelled with `where`."""
    cards, cvvs = set(cards), set(cvvs)
    findings = Findings()
    runs = [run for run in _DIGIT_RUN.findall(text) if luhn_valid(run) and run in cards]
    findings.hits += [f"{where}: card ending {run[-4:]}" for run in runs]
    for card in cards:
        inside = text.count(card) - runs.count(card)
        findings.hits += [f"{where}: card ending {card[-4:]} inside digits"] * inside
    for match in _CVV_VALUE.finditer(text):
        if match.group(1) in cvvs:
            findings.hits.append(f"{where}: a cvv value {match.group(1)!r}")
    return findings
