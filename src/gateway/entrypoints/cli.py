"""The `gateway` command line: dev, migrate, api, relay, worker, webhooks, bank-simulator,
merchants, keys."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from gateway import bootstrap
from gateway.config import (
    GATEWAY_PORT,
    ConfigError,
    Settings,
    bank_webhook_url,
    check_bank_callbacks,
    read_card_key,
)
from gateway.domain.commands import CreateApiKey, CreateMerchant, IssuedKey, RevokeApiKey
from gateway.domain.result import Err, Ok
from gateway.entrypoints import admin, serve
from gateway.entrypoints.admin import Refused
from gateway.entrypoints.logging import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="everything in one process on embedded defaults")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=GATEWAY_PORT)
    sub.add_parser("migrate", help="bring the database schema up to date")
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server in a container
    api.add_argument("--port", type=int, default=GATEWAY_PORT)
    api.add_argument("--workers", type=int, default=1)
    sub.add_parser("relay", help="publish the outbox to RabbitMQ")
    sub.add_parser("worker", help="process payments from RabbitMQ against the bank")
    sub.add_parser("webhooks", help="deliver merchant webhooks from RabbitMQ")
    bank = sub.add_parser("bank-simulator", help="the bank simulator over HTTP")
    bank.add_argument("--host", default="0.0.0.0")  # noqa: S104
    bank.add_argument("--port", type=int, default=8080)
    merchants = sub.add_parser("merchants").add_subparsers(dest="action", required=True)
    merchants.add_parser("create").add_argument("name")
    keys = sub.add_parser("keys").add_subparsers(dest="action", required=True)
    keys.add_parser("create").add_argument("merchant_id")
    keys.add_parser("revoke").add_argument("key_id")
    keys.add_parser("list").add_argument("merchant_id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return _dispatch(args, settings)
    except (ConfigError, Refused) as reason:
        print(f"gateway: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command: str = args.command
    if command == "dev":
        return serve.dev(_dev_settings(settings, args.port), args.host, args.port)
    check_bank_callbacks(settings)
    if command == "api":
        return serve.api(settings, args.host, args.port, args.workers)
    if command == "bank-simulator":
        return serve.bank_simulator(settings, args.host, args.port)
    if command == "relay":
        return serve.relay(settings)
    if command == "worker":
        return serve.worker(settings)
    if command == "webhooks":
        return serve.webhooks(settings)
    if command == "migrate":
        return _run(admin.migrate, settings, require_current=False)
    action: str = args.action
    if command == "merchants":
        return _run(_create_merchant(args.name), settings)
    if action == "create":
        return _run(_create_key(args.merchant_id), settings)
    if action == "revoke":
        return _run(_revoke_key(args.key_id), settings)
    return _run(_list_keys(args.merchant_id), settings)


def _dev_settings(settings: Settings, port: int) -> Settings:
    """`gateway dev`: a card key file and a bank secret of its own (its in-process bank
    posts to its own `/webhooks/bank` on `port`), internal webhooks allowed."""
    read_card_key(settings, create=True)
    signed = dataclasses.replace(
        settings,
        bank_webhook_secret=(
            settings.bank_webhook_secret if settings.bank_webhook_secrets else secrets.token_hex(24)
        ),
        webhook_allow_internal=True,
    )
    return dataclasses.replace(signed, bank_webhook_url=bank_webhook_url(signed, port))


Action = Callable[[bootstrap.Container], Coroutine[Any, Any, None]]


def _run(action: Action, settings: Settings, *, require_current: bool = True) -> int:
    """An admin command: its answer on stdout (JSON); only errors are logged, on stderr
    (the migration's progress and the processes' start-up notes are not its business)."""
    configure_logging("ERROR", stream=sys.stderr)
    if settings.is_sqlite:  # embedded defaults: the card key file is made like the schema
        read_card_key(settings, create=True)

    async def go() -> None:
        container = bootstrap.build(settings, "admin")
        try:
            await admin.prepare_schema(container, require_current=require_current)
            await action(container)
        finally:
            await container.engine().dispose()

    asyncio.run(go())
    return 0


def _print_key(issued: IssuedKey, *, with_merchant: bool) -> None:
    line: dict[str, str] = {"merchant_id": issued.merchant_id} if with_merchant else {}
    line |= {"key_id": issued.key_id, "api_key": issued.api_key.value}
    print(json.dumps(line))


def _create_merchant(name: str) -> Action:
    async def go(container: bootstrap.Container) -> None:
        issued = await container.mediator().send(CreateMerchant(name))
        _print_key(issued, with_merchant=True)

    return go


def _create_key(merchant_id: str) -> Action:
    async def go(container: bootstrap.Container) -> None:
        match await container.mediator().send(CreateApiKey(merchant_id)):
            case Ok(issued):
                _print_key(issued, with_merchant=False)
            case Err():
                raise Refused(f"no merchant {merchant_id}")

    return go


def _revoke_key(key_id: str) -> Action:
    async def go(container: bootstrap.Container) -> None:
        match await container.mediator().send(RevokeApiKey(key_id)):
            case Ok():
                print(json.dumps({"key_id": key_id, "revoked": True}))
            case Err():
                raise Refused(f"no API key {key_id}")

    return go


def _list_keys(merchant_id: str) -> Action:
    async def go(container: bootstrap.Container) -> None:
        for key in await admin.list_keys(container, merchant_id):
            print(json.dumps(key))

    return go


if __name__ == "__main__":
    sys.exit(main())
