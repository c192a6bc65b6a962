"""The in-process mediator: one handler per message type, a fresh unit of work per command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar, cast

from gateway.application.ports import UnitOfWork, UnitOfWorkFactory
from gateway.application.queries import Query
from gateway.domain.commands import Command

R = TypeVar("R")
CommandHandler = Callable[[Any, UnitOfWork], Awaitable[Any]]
QueryHandler = Callable[[Any], Awaitable[Any]]
Next = Callable[[], Awaitable[object]]
Behaviour = Callable[[object, Next], Awaitable[object]]
"""A pipeline step around every message (logging, timing): calls `next()` to go on."""


class UnknownMessage(LookupError):
    """No handler is registered for this message type: a wiring bug, not a request error."""


class Mediator:
    def __init__(
        self,
        commands: Mapping[type[Any], CommandHandler],
        queries: Mapping[type[Any], QueryHandler],
        uow_factory: UnitOfWorkFactory,
        behaviours: Sequence[Behaviour] = (),
    ) -> None:
        self._commands = dict(commands)
        self._queries = dict(queries)
        self._uow_factory = uow_factory
        self._behaviours = tuple(behaviours)

    async def send(self, command: Command[R]) -> R:
        handler = self._commands.get(type(command))
        if handler is None:
            raise UnknownMessage(type(command).__name__)

        async def call() -> object:
            return await handler(command, self._uow_factory())

        return cast("R", await self._through(command, call))

    async def ask(self, query: Query[R]) -> R:
        handler = self._queries.get(type(query))
        if handler is None:
            raise UnknownMessage(type(query).__name__)

        async def call() -> object:
            return await handler(query)

        return cast("R", await self._through(query, call))

    async def _through(self, message: object, call: Next) -> object:
        for behaviour in reversed(self._behaviours):
            # A partial, not a coroutine around the behaviour: one frame less per step.
            call = partial(behaviour, message, call)
        return await call()
