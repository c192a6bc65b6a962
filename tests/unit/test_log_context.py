"""What every log line carries besides its own keys: the request's context and the time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.entrypoints.logging import UtcTimestamp, bind_context, clear_context, merge_context


def test_the_timestamp_is_iso_utc_to_the_microsecond_and_now() -> None:
    stamp = UtcTimestamp()
    before = datetime.now(UTC)
    first = stamp(None, "info", {})["timestamp"]
    second = stamp(None, "info", {})["timestamp"]  # from the cached date and time of day
    after = datetime.now(UTC)

    for text in (first, second):
        assert len(text) == len("2026-12-06T23:37:56.123456Z")
        assert text.endswith("Z")
        moment = datetime.fromisoformat(text)
        assert before - timedelta(microseconds=1) <= moment <= after
    assert first <= second


def test_bound_values_go_on_every_line_and_a_lines_own_keys_win() -> None:
    clear_context()
    bind_context(request_id="req_1")
    bind_context(merchant_id="mer_1")

    line = merge_context(None, "info", {"event": "e", "merchant_id": "mer_own"})

    assert line == {"event": "e", "merchant_id": "mer_own", "request_id": "req_1"}
    clear_context()
    assert merge_context(None, "info", {"event": "e"}) == {"event": "e"}


async def test_concurrent_requests_each_see_only_their_own_context() -> None:
    clear_context()

    async def request(number: int) -> dict[str, object]:
        bind_context(request_id=f"req_{number}")
        await asyncio.sleep(0)  # the others bind theirs meanwhile
        bind_context(merchant_id=f"mer_{number}")
        await asyncio.sleep(0)
        return merge_context(None, "info", {})

    lines = await asyncio.gather(*(request(number) for number in range(5)))

    assert lines == [{"request_id": f"req_{n}", "merchant_id": f"mer_{n}"} for n in range(5)]
    assert merge_context(None, "info", {}) == {}  # nothing leaked out of the tasks
