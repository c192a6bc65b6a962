"""The body of a bank callback, parsed strictly; every invalid field is reported at once.

`{"id": "evt_…", "type": "payment.authorized" | "payment.declined",
"idempotency_key": "<payment id>", "authorization_code": "…", "decline_code": "…"}`;
unknown fields are ignored, `payment.declined` without a `decline_code` is `card_declined`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.application.bank import Authorized, Declined
from gateway.domain.errors import FieldError, ValidationFailed
from gateway.domain.result import Err, Ok, Result

AUTHORIZED = "payment.authorized"
DECLINED = "payment.declined"
DEFAULT_DECLINE_CODE = "card_declined"
_MAX_ID = 255
_MAX_CODE = 64


@dataclass(frozen=True, slots=True)
class BankEvent:
    id: str
    type: str
    payment_id: str
    outcome: Authorized | Declined


def parse_bank_event(raw: bytes) -> Result[BankEvent, ValidationFailed]:
    body = _load(raw)
    if not isinstance(body, dict):
        message = "the body must be a JSON object"
        return Err(ValidationFailed((FieldError("body", "malformed_json", message),)))
    errors: list[FieldError] = []
    event_id = _text(body, "id", _MAX_ID, errors)
    payment_id = _text(body, "idempotency_key", _MAX_CODE, errors)
    event_type = body.get("type")
    outcome: Authorized | Declined | None = None
    if event_type == AUTHORIZED:
        _optional_text(body, "decline_code", errors)
        code = _text(body, "authorization_code", _MAX_CODE, errors)
        outcome = Authorized(code) if code else None
    elif event_type == DECLINED:
        _optional_text(body, "authorization_code", errors)
        decline_code = _optional_text(body, "decline_code", errors)
        outcome = Declined(decline_code or DEFAULT_DECLINE_CODE)
    else:
        errors.append(_invalid("type", f"must be {AUTHORIZED!r} or {DECLINED!r}", body))
    if errors or outcome is None:
        return Err(ValidationFailed(tuple(errors)))
    return Ok(BankEvent(event_id, str(event_type), payment_id, outcome))


def _load(raw: bytes) -> object:
    try:
        return json.loads(raw, parse_constant=_reject, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):
        return None


def _reject(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a key appears twice")
    return found


def _text(body: Mapping[str, object], name: str, limit: int, errors: list[FieldError]) -> str:
    """A required non-empty string of at most `limit` characters ("" when invalid)."""
    value = body.get(name)
    if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
        return value
    errors.append(_invalid(name, f"must be a string of 1-{limit} characters", body))
    return ""


def _optional_text(body: Mapping[str, object], name: str, errors: list[FieldError]) -> str:
    """An optional code: a string of at most 64 characters, null or absent ("" if not)."""
    value = body.get(name)
    if value is None:
        return ""
    if isinstance(value, str) and len(value) <= _MAX_CODE and value.isprintable():
        return value
    errors.append(_invalid(name, f"must be null or a string of at most {_MAX_CODE}", body))
    return ""


def _invalid(name: str, why: str, body: Mapping[str, object]) -> FieldError:
    if name not in body:
        return FieldError(name, "field_required", f"{name} is required")
    return FieldError(name, f"{name}_invalid", f"{name} {why}")
