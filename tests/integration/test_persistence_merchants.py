"""Merchants and their API keys in the unit of work, on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.unit_of_work import SqlUnitOfWork
from gateway.domain.merchant import ApiKey, Merchant
from tests.fixtures.database import a_merchant, ids


async def test_merchants_exist_once_added(engine: AsyncEngine) -> None:
    merchant = a_merchant("Demo")
    async with SqlUnitOfWork(engine) as uow:
        assert not await uow.merchants.any()
        uow.merchants.add(merchant)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.merchants.any()
        assert await uow.merchants.get(merchant.id) == merchant
        assert await uow.merchants.get("mer_missing") is None


async def test_api_keys_are_found_listed_and_revoked(
    engine: AsyncEngine, merchant: Merchant
) -> None:
    now = datetime.now(UTC)
    first = ApiKey(ids.new("key"), merchant.id, "sk_test_aaaaaaaa", "d1" * 32, now)
    second = ApiKey(ids.new("key"), merchant.id, "sk_test_bbbbbbbb", "d2" * 32, now)
    async with SqlUnitOfWork(engine) as uow:
        uow.merchants.add_key(first)
        uow.merchants.add_key(second)
        await uow.commit()

    revoked_at = now + timedelta(minutes=1)
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.merchants.find_key("sk_test_aaaaaaaa") == first
        assert await uow.merchants.find_key("sk_test_cccccccc") is None
        assert await uow.merchants.revoke_key(first.id, revoked_at)
        assert await uow.merchants.revoke_key(first.id, revoked_at + timedelta(hours=1))
        assert not await uow.merchants.revoke_key("key_missing", revoked_at)
        await uow.commit()

    async with SqlUnitOfWork(engine) as uow:
        found = await uow.merchants.find_key("sk_test_aaaaaaaa")
        listed = await uow.merchants.list_keys(merchant.id)
        others = await uow.merchants.list_keys("mer_other")
    assert found is not None
    assert found.revoked_at == revoked_at
    assert not found.active
    assert [key.id for key in listed] == [first.id, second.id]
    assert [key.active for key in listed] == [False, True]
    assert others == []
