"""Who is calling: an API key becomes a merchant id, or nothing.

Keys are found by their public prefix and compared by digest in constant time. Found keys
are cached for a few seconds so a busy merchant costs no query per request; a revoked key
is refused by every process within that time: an entry is never used once it is older
than that (its age counts from the start of its query). Half-way through, the first
request that uses it starts a new query in the background and does not wait for it, so
a busy merchant's requests never wait for a lookup. When an entry has run out, the
requests that find it so share one query instead of each sending its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.application.ports import UnitOfWorkFactory
from gateway.domain.merchant import ApiKey, PlainApiKey
from gateway.domain.result import Err, Ok, Result

_MAX_CACHED = 10_000
REFRESH_AT = 0.5  # of the entry's time to live: its query is sent again in the background


@dataclass(frozen=True, slots=True)
class Principal:
    merchant_id: str
    key_id: str


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """Missing, malformed, unknown or revoked key: the caller learns no more than that."""


class ApiKeyAuthenticator:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow_factory = uow_factory
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._loading: dict[str, asyncio.Future[ApiKey | None]] = {}

    async def authenticate(self, raw: str) -> Result[Principal, AuthenticationFailed]:
        match PlainApiKey.create(raw):
            case Err():
                return Err(AuthenticationFailed())
            case Ok(plain):
                pass
        key = await self._find(plain.prefix)
        if key is None or not key.active or not plain.matches(key.digest):
            return Err(AuthenticationFailed())
        return Ok(Principal(key.merchant_id, key.id))

    async def _find(self, prefix: str) -> ApiKey | None:
        cached = self._cache.get(prefix)
        if cached is not None:
            age = self._clock() - cached[0]
            if age < self._ttl_s:
                if age >= self._ttl_s * REFRESH_AT and prefix not in self._loading:
                    self._start_loading(prefix)  # this entry serves until it is back
                return cached[1]
        loading = self._loading.get(prefix) or self._start_loading(prefix)
        # shielded: a caller that goes away does not cancel the others' lookup
        return await asyncio.shield(loading)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Waits (at most `timeout_s`) for the lookups still out, such as a refresh in the
        background that no request waits for, so that none outlives the database pool it
        runs on; cancels the rest."""
        pending = set(self._loading.values())
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=timeout_s)
        for lookup in late:
            lookup.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _start_loading(self, prefix: str) -> asyncio.Future[ApiKey | None]:
        loading = self._loading[prefix] = asyncio.ensure_future(self._load(prefix))
        loading.add_done_callback(lambda done: self._loaded(prefix, done))
        return loading

    def _loaded(self, prefix: str, done: asyncio.Future[ApiKey | None]) -> None:
        self._loading.pop(prefix, None)
        if not done.cancelled():
            done.exception()  # retrieved: its callers may all have gone away

    async def _load(self, prefix: str) -> ApiKey | None:
        started = self._clock()  # the entry is as old as the query
        async with self._uow_factory() as uow:
            key = await uow.merchants.find_key(prefix)
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[prefix] = (started, key)
        return key
