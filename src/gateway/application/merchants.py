"""Merchant and API-key handlers, used by the command line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.application.ports import Clock, IdGenerator, UnitOfWork, UnitOfWorkFactory
from gateway.application.queries import Query
from gateway.domain.commands import CreateApiKey, CreateMerchant, IssuedKey, RevokeApiKey
from gateway.domain.errors import NotFound
from gateway.domain.merchant import ApiKey, Merchant, PlainApiKey
from gateway.domain.result import Err, Ok, Result


@dataclass(frozen=True, slots=True)
class MerchantDeps:
    clock: Clock
    ids: IdGenerator


async def create_merchant(cmd: CreateMerchant, uow: UnitOfWork, *, deps: MerchantDeps) -> IssuedKey:
    merchant = Merchant(deps.ids.new("mer"), cmd.name, deps.clock.now())
    async with uow:
        uow.merchants.add(merchant)
        issued = _issue_key(uow, merchant.id, deps)
        await uow.commit()
    return issued


async def create_api_key(
    cmd: CreateApiKey, uow: UnitOfWork, *, deps: MerchantDeps
) -> Result[IssuedKey, NotFound]:
    async with uow:
        if await uow.merchants.get(cmd.merchant_id) is None:
            return Err(NotFound("merchant"))
        issued = _issue_key(uow, cmd.merchant_id, deps)
        await uow.commit()
    return Ok(issued)


async def revoke_api_key(
    cmd: RevokeApiKey, uow: UnitOfWork, *, deps: MerchantDeps
) -> Result[None, NotFound]:
    async with uow:
        if not await uow.merchants.revoke_key(cmd.key_id, deps.clock.now()):
            return Err(NotFound("api key"))
        await uow.commit()
    return Ok(None)


def _issue_key(uow: UnitOfWork, merchant_id: str, deps: MerchantDeps) -> IssuedKey:
    plain = PlainApiKey.generate()
    key = ApiKey(deps.ids.new("key"), merchant_id, plain.prefix, plain.digest(), deps.clock.now())
    uow.merchants.add_key(key)
    return IssuedKey(key.id, merchant_id, plain)


@dataclass(frozen=True, slots=True)
class ListApiKeys(Query[Result[Sequence[ApiKey], NotFound]]):
    merchant_id: str


async def list_api_keys(
    query: ListApiKeys, *, uow_factory: UnitOfWorkFactory
) -> Result[Sequence[ApiKey], NotFound]:
    async with uow_factory() as uow:
        if await uow.merchants.get(query.merchant_id) is None:
            return Err(NotFound("merchant"))
        return Ok(await uow.merchants.list_keys(query.merchant_id))
