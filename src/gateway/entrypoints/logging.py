"""Structured logging for every process: JSON lines through structlog, stdlib included.

An HTTP request binds `request_id` and `merchant_id` (`bind_context`) to every line logged
while it is answered. Bodies are never logged; `redact` is the second line of defence: it
masks any run of 12-19 digits (card numbers, also with spaces or dashes) and the values of
sensitive keys.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
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
_CARD_DIGITS = 12
_ASCII_DIGITS = b"0123456789"
_MAX_DEPTH = 8
_CHATTY_LIBRARIES = ("aiosqlite", "asyncio", "httpx", "httpcore", "aiormq", "aio_pika")

# One variable holding the whole context: structlog's `merge_contextvars` looks at every
# context variable of the task (Litestar's, sniffio's, ...) on every line, five times
# what this costs on the access log line written per request.
_CONTEXT: ContextVar[dict[str, object]] = ContextVar("gateway_log_context")


def bind_context(**values: object) -> None:
    """Adds `values` to every line logged from here on in this task (and in the tasks it
    starts): a line's own keys win."""
    _CONTEXT.set({**_CONTEXT.get({}), **values})


def clear_context() -> None:
    _CONTEXT.set({})


def merge_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    for key, value in _CONTEXT.get({}).items():
        event_dict.setdefault(key, value)
    return event_dict


def _mask_digits(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return f"{'*' * (len(digits) - 4)}{digits[-4:]}"


def looks_like_card_number(text: str) -> bool:
    """Whether `text` holds a run of digits that `redact` masks."""
    return _CARD_LIKE.search(text) is not None


def _mask_card_like(text: str) -> str:
    """`text` with its card-number-like digit runs masked. ASCII text with fewer than
    twelve digits holds none and is not searched: counting costs a quarter of the search
    (`\\d` also matches other scripts' digits: other text is always searched)."""
    if text.isascii():
        encoded = text.encode()
        if len(encoded) - len(encoded.translate(None, _ASCII_DIGITS)) < _CARD_DIGITS:
            return text
    return _CARD_LIKE.sub(_mask_digits, text)


def _clean(key: object, value: object, depth: int = 0) -> object:
    if isinstance(key, str) and key.lower() in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, str):
        return _mask_card_like(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _CARD_INT:
        return _mask_card_like(str(value))
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
                cleaned[key] = _mask_card_like(value) if len(value) >= _CARD_DIGITS else value
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


class UtcTimestamp:
    """`timestamp`: ISO 8601 in UTC to the microsecond (`2026-12-06T23:37:56.123456Z`),
    the date and time of day formatted once a second, not once a line (a quarter of
    structlog's `TimeStamper` cost)."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")  # one attribute: threads share it

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        cached, text = self._second
        if cached != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        event_dict["timestamp"] = f"{text}.{nanoseconds // 1000:06d}Z"
        return event_dict


def _stamps() -> list[Processor]:
    """Level and time, added after `redact`: what we write there needs no masking (and
    the time has digits enough to cost a search on every line)."""
    return [structlog.processors.add_log_level, UtcTimestamp()]


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
    structlog.configure(
        processors=[merge_context, *render],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.WriteLoggerFactory(file=output),
        cache_logger_on_first_use=cache_loggers,
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[merge_context, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level_no)
    for name in _CHATTY_LIBRARIES:  # their debug lines echo SQL parameters and bank URLs
        logging.getLogger(name).setLevel(max(level_no, logging.WARNING))
