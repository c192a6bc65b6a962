"""API keys → merchants: the short cache in front of the key lookup."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Self

from gateway.application.authentication import ApiKeyAuthenticator, Principal
from gateway.domain.merchant import ApiKey, PlainApiKey
from gateway.domain.result import Ok

PLAIN = PlainApiKey.generate()
KEY = ApiKey("key_1", "mer_1", PLAIN.prefix, PLAIN.digest(), datetime(2026, 1, 1, tzinfo=UTC))


class CountingKeys:
    """A key store whose lookups wait until `answer` is set, and are counted."""

    def __init__(self, key: ApiKey | None) -> None:
        self.key = key
        self.lookups = 0
        self.answer = asyncio.Event()

    async def find_key(self, prefix: str) -> ApiKey | None:
        self.lookups += 1
        await self.answer.wait()
        return self.key if self.key is not None and self.key.prefix == prefix else None


class KeysOnly:
    def __init__(self, keys: CountingKeys) -> None:
        self.merchants = keys

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def authenticator(
    keys: CountingKeys, ttl_s: float = 60.0, clock: Clock | None = None
) -> ApiKeyAuthenticator:
    return ApiKeyAuthenticator(
        lambda: KeysOnly(keys),  # type: ignore[arg-type,return-value]
        ttl_s,
        clock or Clock(),
    )


async def cached_at_start(keys: CountingKeys, clock: Clock, ttl_s: float) -> ApiKeyAuthenticator:
    """An authenticator whose entry for KEY was loaded at `clock.now`; later lookups wait
    for `keys.answer` again."""
    auth = authenticator(keys, ttl_s, clock)
    keys.answer.set()
    assert await auth.authenticate(PLAIN.value) == Ok(Principal("mer_1", "key_1"))
    keys.answer.clear()
    return auth


async def test_concurrent_requests_with_an_uncached_key_share_one_lookup() -> None:
    keys = CountingKeys(KEY)
    auth = authenticator(keys)

    waiting = [asyncio.create_task(auth.authenticate(PLAIN.value)) for _ in range(20)]
    await asyncio.sleep(0.01)
    keys.answer.set()
    results = await asyncio.gather(*waiting)

    assert keys.lookups == 1
    assert results == [Ok(Principal("mer_1", "key_1"))] * 20
    assert await auth.authenticate(PLAIN.value) == Ok(Principal("mer_1", "key_1"))
    assert keys.lookups == 1  # cached


async def test_a_caller_that_goes_away_does_not_cancel_the_others_lookup() -> None:
    keys = CountingKeys(KEY)
    auth = authenticator(keys)
    first = asyncio.create_task(auth.authenticate(PLAIN.value))
    second = asyncio.create_task(auth.authenticate(PLAIN.value))
    await asyncio.sleep(0.01)

    first.cancel()
    keys.answer.set()

    assert await second == Ok(Principal("mer_1", "key_1"))
    assert keys.lookups == 1


async def test_an_expired_entry_is_looked_up_again() -> None:
    keys = CountingKeys(KEY)
    keys.answer.set()
    auth = authenticator(keys, ttl_s=0.0)

    await auth.authenticate(PLAIN.value)
    await auth.authenticate(PLAIN.value)

    assert keys.lookups == 2


async def test_unknown_and_wrong_keys_fail_the_same_way() -> None:
    keys = CountingKeys(KEY)
    keys.answer.set()
    auth = authenticator(keys)
    wrong_secret = PLAIN.prefix + "x" * 32

    unknown = await auth.authenticate(PlainApiKey.generate().value)
    wrong = await auth.authenticate(wrong_secret)

    assert type(unknown).__name__ == type(wrong).__name__ == "Err"


async def test_past_half_its_life_an_entry_is_looked_up_again_without_making_anyone_wait() -> None:
    keys, clock = CountingKeys(KEY), Clock()
    auth = await cached_at_start(keys, clock, ttl_s=2.0)
    clock.now += 1.5

    answers = [await auth.authenticate(PLAIN.value) for _ in range(5)]  # lookup still out

    assert answers == [Ok(Principal("mer_1", "key_1"))] * 5
    await asyncio.sleep(0)  # the background lookup starts
    assert keys.lookups == 2  # one, not one per request
    keys.answer.set()
    await asyncio.sleep(0)
    clock.now += 1.0  # 2.5 s after the first lookup, 1.0 s after the second
    assert await auth.authenticate(PLAIN.value) == Ok(Principal("mer_1", "key_1"))
    assert keys.lookups == 2


async def test_a_key_revoked_meanwhile_is_refused_once_the_background_lookup_is_back() -> None:
    keys, clock = CountingKeys(KEY), Clock()
    auth = await cached_at_start(keys, clock, ttl_s=2.0)
    keys.key = dataclasses.replace(KEY, revoked_at=datetime(2026, 1, 2, tzinfo=UTC))
    clock.now += 1.2

    assert await auth.authenticate(PLAIN.value) == Ok(Principal("mer_1", "key_1"))
    keys.answer.set()
    await asyncio.sleep(0)

    assert type(await auth.authenticate(PLAIN.value)).__name__ == "Err"


async def test_an_entry_is_never_used_past_its_life_while_its_lookup_is_out() -> None:
    keys, clock = CountingKeys(KEY), Clock()
    auth = await cached_at_start(keys, clock, ttl_s=2.0)
    keys.key = None  # deleted, and the lookup that would say so is slow
    clock.now += 1.5
    await auth.authenticate(PLAIN.value)  # starts the background lookup
    clock.now += 0.6  # the entry is 2.1 s old

    waiting = asyncio.create_task(auth.authenticate(PLAIN.value))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # it waits for the lookup instead of using the old entry
    keys.answer.set()

    assert type(await waiting).__name__ == "Err"
    assert keys.lookups == 2


async def test_close_waits_for_a_lookup_in_the_background() -> None:
    keys, clock = CountingKeys(KEY), Clock()
    auth = await cached_at_start(keys, clock, ttl_s=2.0)
    clock.now += 1.5
    await auth.authenticate(PLAIN.value)  # starts the background lookup
    await asyncio.sleep(0)

    closing = asyncio.create_task(auth.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    keys.answer.set()
    await closing

    assert keys.lookups == 2


async def test_close_cancels_a_lookup_that_does_not_come_back_in_time() -> None:
    keys, clock = CountingKeys(KEY), Clock()
    auth = await cached_at_start(keys, clock, ttl_s=2.0)
    clock.now += 1.5
    await auth.authenticate(PLAIN.value)
    await asyncio.sleep(0)

    await asyncio.wait_for(auth.close(timeout_s=0.01), timeout=1.0)

    clock.now += 1.0  # the entry ran out; a new lookup is sent
    keys.answer.set()
    assert await auth.authenticate(PLAIN.value) == Ok(Principal("mer_1", "key_1"))
    assert keys.lookups == 3
