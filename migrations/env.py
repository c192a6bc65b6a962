"""Alembic environment.

Programmatic use (`gateway.adapters.migrations`) hands over an open connection in
`config.attributes["connection"]`. By hand, `alembic upgrade head` at the repository root
connects to `GATEWAY_DATABASE_URL` (default: the SQLite file `gateway.db`).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from gateway.adapters.database import create_engine
from gateway.adapters.orm import metadata
from gateway.config import Settings

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_with)
    finally:
        await engine.dispose()


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url


if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    run_with(shared)
else:
    asyncio.run(run_online(database_url()))
