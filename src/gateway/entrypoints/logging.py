"""Structured logging for every process: JSON lines through structlog, stdlib included.

`request_id`, `merchant_id` and `payment_id` are bound through contextvars. Bodies are
never logged; `redact` is the second line of defence: it masks any run of 12-19 digits
(card numbers, also with spaces or dashes) and the values of sensitive keys.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
SENSITIVE_KEYS = frozenset(
    {
        "number",
        "card_number",
        "pan",
        "cvv",
        "cvc",
        "authorization",
        "api_key",
        "secret",
        "password",
        "card_key",
        "body",
    }
)
_CARD_LIKE = re.compile(r"(?<!\d)(?:\d[ -]?){11,18}\d(?!\d)")
_CARD_INT = 10**11  # the smallest integer with twelve digits
_MAX_DEPTH = 8
_CHATTY_LIBRARIES = ("aiosqlite", "asyncio", "httpx", "httpcore", "aiormq", "aio_pika")


def _mask_digits(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return f"{'*' * (len(digits) - 4)}{digits[-4:]}"


def _clean(key: object, value: object, depth: int = 0) -> object:
    if isinstance(key, str) and key.lower() in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, str):
        return _CARD_LIKE.sub(_mask_digits, value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _CARD_INT:
        return _CARD_LIKE.sub(_mask_digits, str(value))
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {k: _clean(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(None, item, depth + 1) for item in value]
    return value


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Masks card-number-like digit runs anywhere and the values of sensitive keys."""
    cleaned = {}
    for key, value in event_dict.items():
        # Most values of a line are short strings and small numbers: checked here without
        # a call per value (a line per request); everything else goes through `_clean`.
        if type(key) is str and key.lower() not in SENSITIVE_KEYS:
            kind = type(value)
            if kind is str:  # twelve digits at least make a card number
                cleaned[key] = _CARD_LIKE.sub(_mask_digits, value) if len(value) >= 12 else value
                continue
            if kind is float or value is None or (kind is int and abs(value) < _CARD_INT):
                cleaned[key] = value
                continue
        cleaned[key] = _clean(key, value)
    return cleaned


def render_json(event_dict: EventDict, **_kw: Any) -> str:
    """One JSON object on one line, by msgspec (faster than `json.dumps`); what it
    cannot encode (keys that are not strings) goes through `json.dumps`, and any object
    it does not know becomes its `repr`."""
    try:
        return msgspec.json.encode(event_dict, enc_hook=repr).decode()
    except (TypeError, msgspec.EncodeError):
        return json.dumps(event_dict, default=repr)


def _stamps() -> list[Processor]:
    """Level and time, added after `redact`: what we write there needs no masking (and
    the time has digits enough to cost a search on every line)."""
    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def configure_logging(
    level: str = "INFO", stream: TextIO | None = None, *, cache_loggers: bool = True
) -> None:
    """Configure structlog and the standard library to write JSON lines to `stream`.

    With `cache_loggers` (a process's settings, made once at its start) each logger keeps
    what it was configured with after its first line, which saves a fifth of a line's cost
    (the access log writes one per request); a test that configures logging again and
    again passes `False`."""
    output = stream if stream is not None else sys.stdout
    level_no = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    render: list[Processor] = [
        structlog.processors.format_exc_info,
        redact,
        *_stamps(),
        structlog.processors.JSONRenderer(render_json),
    ]
    merge = structlog.contextvars.merge_contextvars
    structlog.configure(
        processors=[merge, structlog.processors.StackInfoRenderer(), *render],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.WriteLoggerFactory(file=output),
        cache_logger_on_first_use=cache_loggers,
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[merge, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level_no)
    for name in _CHATTY_LIBRARIES:  # their debug lines echo SQL parameters and bank URLs
        logging.getLogger(name).setLevel(max(level_no, logging.WARNING))
