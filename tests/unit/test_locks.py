"""In-process key locks: one holder per name, the others told at once."""

from __future__ import annotations

import asyncio

import pytest

from gateway.adapters.locks import InProcessKeyLocks


async def test_a_free_name_is_held_and_then_released() -> None:
    locks = InProcessKeyLocks()
    async with locks.hold("mer_1:key") as held:
        assert held
        assert locks.held == 1
    assert locks.held == 0
    async with locks.hold("mer_1:key") as held_again:
        assert held_again


async def test_a_taken_name_is_refused_at_once_and_stays_with_its_holder() -> None:
    locks = InProcessKeyLocks()
    async with locks.hold("a") as first:
        async with locks.hold("a") as second:
            assert (first, second) == (True, False)
        assert locks.held == 1, "the refused caller does not release the holder's name"
        async with locks.hold("a") as third:
            assert not third
    assert locks.held == 0


async def test_different_names_do_not_block_each_other() -> None:
    locks = InProcessKeyLocks()
    async with locks.hold("a") as a, locks.hold("b") as b:
        assert (a, b) == (True, True)
        assert locks.held == 2


async def test_the_name_is_released_when_the_block_raises() -> None:
    locks = InProcessKeyLocks()
    with pytest.raises(RuntimeError):
        async with locks.hold("a"):
            raise RuntimeError("boom")
    assert locks.held == 0
    async with locks.hold("a") as held:
        assert held


async def test_among_concurrent_tasks_exactly_one_holds_a_name() -> None:
    locks = InProcessKeyLocks()

    async def attempt() -> bool:
        async with locks.hold("shared") as held:
            await asyncio.sleep(0.01)
            return held

    results = await asyncio.gather(*(attempt() for _ in range(20)))
    assert results.count(True) == 1
    assert locks.held == 0


async def test_many_names_leave_nothing_behind() -> None:
    locks = InProcessKeyLocks()
    for index in range(1_000):
        async with locks.hold(f"mer_1:{index}") as held:
            assert held
    assert locks.held == 0
