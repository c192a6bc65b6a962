"""Request ids the gateway makes: they reach the logs as the client got them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.entrypoints.http import middleware
from gateway.entrypoints.logging import redact

DIGIT_RUN = bytes.fromhex("3a6810fcf35a058271757377")  # "…058271757377": twelve digits


def _logged(request_id: str) -> object:
    return redact(None, "info", {"request_id": request_id})["request_id"]


def test_a_draw_the_logs_would_mask_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([DIGIT_RUN, bytes(range(0xA0, 0xAC))])
    monkeypatch.setattr(middleware.os, "urandom", lambda _size: next(draws))
    assert _logged(f"req_{DIGIT_RUN.hex()}") != f"req_{DIGIT_RUN.hex()}"  # the case itself

    request_id = middleware.new_request_id()

    assert request_id == "req_a0a1a2a3a4a5a6a7a8a9aaab"


@given(st.lists(st.binary(min_size=12, max_size=12), min_size=1, max_size=5))
def test_every_request_id_is_logged_as_it_is(draws: list[bytes]) -> None:
    source = iter([*draws, b"\xab" * 12])  # the last draw has no decimal digit
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(middleware.os, "urandom", lambda _size: next(source))
        request_id = middleware.new_request_id()

    assert request_id.startswith("req_")
    assert len(request_id) == 28
    assert _logged(request_id) == request_id
