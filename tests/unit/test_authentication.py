"""API keys → merchants: the short cache in front of the key lookup."""

from __future__ import annotations

import asyncio
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


def authenticator(keys: CountingKeys, ttl_s: float = 60.0) -> ApiKeyAuthenticator:
    return ApiKeyAuthenticator(lambda: KeysOnly(keys), ttl_s)  # type: ignore[arg-type,return-value]


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
