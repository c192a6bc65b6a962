"""Alembic, driven programmatically over the application's own async engine.

The connection reaches `migrations/env.py` through `config.attributes["connection"]`.
Concurrent migrators wait for each other before Alembic starts (its `context` is global
to the process, so two runs must never interleave): SQLite through `BEGIN IMMEDIATE`,
PostgreSQL through an advisory lock per schema. The second finds the schema up to date.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import gateway

MIGRATIONS = Path(gateway.__file__).resolve().parents[2] / "migrations"
_PG_LOCK = text(
    "SELECT pg_advisory_xact_lock("
    "hashtext('gateway.migrations:' || coalesce(current_schema(), '')))"
)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    def upgrade(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    await _run(engine, upgrade)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    def down(connection: Connection) -> None:
        command.downgrade(_config(connection), revision)

    await _run(engine, down)


async def is_current(engine: AsyncEngine) -> bool:
    """True when the database is at the head revision."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current_heads)
    return current == set(_script().get_heads())


def revisions() -> list[str]:
    """Every revision id, from base to head."""
    return [script.revision for script in reversed(list(_script().walk_revisions()))]


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _current_heads(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def _run(engine: AsyncEngine, step: Callable[[Connection], None]) -> None:
    async with engine.connect() as connection:
        await _lock(connection)
        await connection.run_sync(step)
        await connection.commit()


async def _lock(connection: AsyncConnection) -> None:
    if connection.dialect.name == "sqlite":
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        await connection.execute(_PG_LOCK)
