"""Who is calling: an API key becomes a merchant id, or nothing.

Keys are found by their public prefix and compared by digest in constant time. Found keys
are cached for a few seconds so a busy merchant costs no query per request; a revoked key
is refused by every process within that time. When an entry runs out, the requests that
find it so share one query instead of each sending its own.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from gateway.application.ports import UnitOfWorkFactory
from gateway.domain.merchant import ApiKey, PlainApiKey
from gateway.domain.result import Err, Ok, Result

_MAX_CACHED = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    merchant_id: str
    key_id: str


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """Missing, malformed, unknown or revoked key: the caller learns no more than that."""


class ApiKeyAuthenticator:
    def __init__(self, uow_factory: UnitOfWorkFactory, ttl_s: float = 2.0) -> None:
        self._uow_factory = uow_factory
        self._ttl_s = ttl_s
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
        if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1]
        loading = self._loading.get(prefix)
        if loading is None:
            loading = self._loading[prefix] = asyncio.ensure_future(self._load(prefix))
            loading.add_done_callback(lambda done: self._loaded(prefix, done))
        # shielded: a caller that goes away does not cancel the others' lookup
        return await asyncio.shield(loading)

    def _loaded(self, prefix: str, done: asyncio.Future[ApiKey | None]) -> None:
        self._loading.pop(prefix, None)
        if not done.cancelled():
            done.exception()  # retrieved: its callers may all have gone away

    async def _load(self, prefix: str) -> ApiKey | None:
        started = time.monotonic()  # the entry is as old as the query
        async with self._uow_factory() as uow:
            key = await uow.merchants.find_key(prefix)
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[prefix] = (started, key)
        return key
