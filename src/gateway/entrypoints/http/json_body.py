"""A request body as JSON, read strictly: one meaning for every byte a client may send.

Parsers disagree on duplicate keys (first wins, last wins, error), so a body that repeats
a key is refused rather than read one way here and another way by whoever sent it. Also
refused: bytes that are not UTF-8 (a byte-order mark included), NaN and Infinity, lone
surrogates, nesting too deep to parse. Integers of any size are kept, so that an amount of
10**40 is reported as `amount_invalid`, not as unreadable JSON.
"""

from __future__ import annotations

import json

from gateway.entrypoints.http.problems import ApiProblem


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _DuplicateKey
    return value


def _reject_constant(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


# Made once: `json.loads` with arguments builds a new decoder on every call.
_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_reject_constant)


def decode_json_body(raw: bytes) -> object:
    """JSON into plain Python values, whatever the Content-Type says; else `malformed_json`."""
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
        if b"\\u" in raw:  # only an escape can make a lone surrogate: look for one
            json.dumps(value, ensure_ascii=False).encode()  # lone surrogates: not text
    except RecursionError:
        raise ApiProblem("malformed_json", "the body is nested too deeply") from None
    except _DuplicateKey:
        raise ApiProblem("malformed_json", "an object in the body repeats a key") from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        raise ApiProblem("malformed_json", "the body must be a JSON object") from None
    return value
