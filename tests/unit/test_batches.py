"""Group commit in the adapter: calls made while the batches in flight run go together."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.adapters.batches import Batches


class Recorder:
    """A `run` that records each batch and waits for `release` before answering; an item
    named in `failing` gets its own exception, `broken` fails the whole batch."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.failing: set[str] = set()
        self.broken = False

    async def __call__(self, items: Sequence[str]) -> list[str | BaseException]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.broken:
            raise ConnectionError("the database went away")
        return [ValueError(item) if item in self.failing else item.upper() for item in items]


async def turns(count: int) -> None:
    """Lets the event loop run `count` turns: a batch starts the turn after its first call,
    and its `run` is entered the turn after that."""
    for _ in range(count):
        await asyncio.sleep(0)


def batches(recorder: Recorder, *, in_flight: int = 1, largest: int = 100) -> Batches[str, str]:
    return Batches(recorder, lambda item: item, in_flight=in_flight, largest=largest)


async def test_a_call_alone_goes_alone_and_gets_its_answer() -> None:
    recorder = Recorder()
    recorder.release.set()

    assert await batches(recorder)("a") == "A"
    assert recorder.batches == [["a"]]


async def test_calls_made_while_a_batch_runs_go_together_in_the_next() -> None:
    recorder = Recorder()
    run = batches(recorder)
    first = asyncio.create_task(run("a"))
    await turns(2)
    later = [asyncio.create_task(run(name)) for name in ("b", "c", "d")]
    await turns(1)
    recorder.release.set()

    assert await asyncio.gather(first, *later) == ["A", "B", "C", "D"]
    assert recorder.batches == [["a"], ["b", "c", "d"]]


async def test_calls_made_in_the_same_turn_of_the_loop_share_a_batch() -> None:
    recorder = Recorder()
    recorder.release.set()
    run = batches(recorder, in_flight=2)

    assert await asyncio.gather(*(run(name) for name in "abc")) == ["A", "B", "C"]
    assert recorder.batches == [["a", "b", "c"]]


async def test_no_more_than_in_flight_batches_run_at_once_and_none_is_larger_than_largest() -> None:
    recorder = Recorder()
    run = batches(recorder, in_flight=2, largest=2)
    calls = [asyncio.create_task(run(name)) for name in "abcde"]
    await turns(5)

    assert recorder.batches == [["a", "b"], ["c", "d"]]
    recorder.release.set()
    assert await asyncio.gather(*calls) == ["A", "B", "C", "D", "E"]
    assert recorder.batches == [["a", "b"], ["c", "d"], ["e"]]


async def test_a_batch_never_holds_the_same_key_twice() -> None:
    recorder = Recorder()
    recorder.release.set()
    run = batches(recorder)

    assert await asyncio.gather(run("a"), run("a"), run("b")) == ["A", "A", "B"]
    assert recorder.batches == [["a", "b"], ["a"]]


async def test_each_caller_gets_its_own_failure() -> None:
    recorder = Recorder()
    recorder.failing = {"b"}
    recorder.release.set()
    run = batches(recorder)

    results = await asyncio.gather(run("a"), run("b"), return_exceptions=True)

    assert results[0] == "A"
    assert isinstance(results[1], ValueError)


async def test_a_batch_that_fails_fails_every_caller_in_it_and_not_the_next() -> None:
    recorder = Recorder()
    recorder.broken = True
    recorder.release.set()
    run = batches(recorder)

    results = await asyncio.gather(run("a"), run("b"), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)

    recorder.broken = False
    assert await run("c") == "C"


async def test_a_caller_that_went_away_before_its_batch_started_is_left_out() -> None:
    recorder = Recorder()
    run = batches(recorder)
    first = asyncio.create_task(run("a"))
    await turns(2)
    gone = asyncio.create_task(run("b"))
    kept = asyncio.create_task(run("c"))
    await turns(1)
    gone.cancel()
    recorder.release.set()

    assert await first == "A"
    assert await kept == "C"
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert recorder.batches == [["a"], ["c"]]


async def test_a_caller_that_goes_away_does_not_stop_its_batch() -> None:
    recorder = Recorder()
    run = batches(recorder)
    gone = asyncio.create_task(run("a"))
    kept = asyncio.create_task(run("b"))
    await turns(2)
    gone.cancel()
    await turns(1)
    recorder.release.set()

    assert await kept == "B"
    assert recorder.batches == [["a", "b"]]
