"""Schema checks and key listing shared by the command-line entrypoints."""

from __future__ import annotations

from gateway import bootstrap
from gateway.application.merchants import ListApiKeys
from gateway.domain.result import Err, Ok


class Refused(Exception):
    """A clear one-line reason to stop; printed without a traceback."""


async def prepare_schema(container: bootstrap.Container, *, require_current: bool) -> None:
    """SQLite brings itself up to date; PostgreSQL is migrated only by `gateway migrate`."""
    if container.settings().is_sqlite:
        await bootstrap.migrate_database(container)
    elif require_current and not await bootstrap.schema_is_current(container):
        raise Refused("the database schema is not up to date: run `gateway migrate` first")


async def migrate(container: bootstrap.Container) -> None:
    await bootstrap.migrate_database(container)


async def list_keys(container: bootstrap.Container, merchant_id: str) -> list[dict[str, object]]:
    match await container.mediator().ask(ListApiKeys(merchant_id)):
        case Ok(keys):
            return [
                {
                    "key_id": key.id,
                    "prefix": key.prefix,
                    "created_at": key.created_at.isoformat().replace("+00:00", "Z"),
                    "revoked": key.revoked_at is not None,
                }
                for key in keys
            ]
        case Err():
            raise Refused(f"no merchant {merchant_id}")
