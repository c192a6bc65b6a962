"""Alembic migrations on real SQLite and PostgreSQL: the stairway and the schema."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.database import create_engine
from gateway.adapters.migrations import downgrade, is_current, migrate, revisions
from gateway.adapters.orm import metadata

TABLES = {
    "merchants",
    "api_keys",
    "payments",
    "jobs",
    "card_data",
    "outbox",
    "idempotency_keys",
    "bank_callbacks",
    "pending_payments",
    "events",
    "webhook_endpoints",
    "webhook_secrets",
    "webhook_deliveries",
    "webhook_attempts",
}


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names) - {"alembic_version"}


def differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def test_revisions_run_from_base_to_head() -> None:
    listed = revisions()
    assert listed[0] == "0001"
    assert len(listed) == len(set(listed))


async def test_stairway_upgrades_and_downgrades_every_revision(bare_engine: AsyncEngine) -> None:
    previous = "base"
    for revision in revisions():
        await migrate(bare_engine, revision)
        await downgrade(bare_engine, previous)
        await migrate(bare_engine, revision)
        previous = revision
    await downgrade(bare_engine, "base")
    assert await table_names(bare_engine) == set()
    await migrate(bare_engine)
    assert await table_names(bare_engine) == TABLES


async def test_is_current_only_once_migrated_to_head(bare_engine: AsyncEngine) -> None:
    assert not await is_current(bare_engine)
    await migrate(bare_engine)
    assert await is_current(bare_engine)
    await downgrade(bare_engine)
    assert not await is_current(bare_engine)


async def test_migrated_schema_matches_the_tables_in_code(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_migrating_again_changes_nothing(engine: AsyncEngine) -> None:
    await migrate(engine)
    assert await is_current(engine)
    assert await table_names(engine) == TABLES


async def test_concurrent_migrations_of_one_database_both_succeed(
    bare_engine: AsyncEngine,
) -> None:
    url = bare_engine.url.render_as_string(hide_password=False)
    schema = None
    if bare_engine.dialect.name == "postgresql":
        async with bare_engine.connect() as connection:
            schema = await connection.scalar(text("SELECT current_schema()"))
    other = create_engine(url, schema=schema)
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(migrate(bare_engine), migrate(other))
    finally:
        await other.dispose()
    assert await is_current(bare_engine)


async def test_version_table_lives_in_the_engines_schema(
    pg_engine: AsyncEngine, pg_schema: str
) -> None:
    query = text(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'"
    )
    async with pg_engine.connect() as connection:
        found = set(await connection.scalars(query))
    assert pg_schema in found
