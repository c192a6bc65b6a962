"""The mediator: one handler per message, a fresh unit of work each, behaviours around."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from gateway.application.mediator import Mediator, UnknownMessage
from gateway.application.ports import UnitOfWork
from gateway.application.queries import Query
from gateway.domain.commands import Command
from tests.unit.fakes import FakeStore, FakeUnitOfWork


@dataclass(frozen=True)
class Greet(Command[str]):
    name: str


@dataclass(frozen=True)
class Unregistered(Command[None]):
    pass


@dataclass(frozen=True)
class HowMany(Query[int]):
    pass


@dataclass(frozen=True)
class Unasked(Query[int]):
    pass


class Recorder:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.uows: list[UnitOfWork] = []

    async def greet(self, cmd: Greet, uow: UnitOfWork) -> str:
        self.log.append(f"handler {cmd.name}")
        self.uows.append(uow)
        return f"hello {cmd.name}"

    async def how_many(self, query: HowMany) -> int:
        self.log.append("query")
        return len(self.log)

    def behaviour(
        self, name: str
    ) -> Callable[[object, Callable[[], Awaitable[object]]], Awaitable[object]]:
        async def step(message: object, call_next: Callable[[], Awaitable[object]]) -> object:
            self.log.append(f"{name} before {type(message).__name__}")
            result = await call_next()
            self.log.append(f"{name} after {result!r}")
            return result

        return step


def mediator(recorder: Recorder, *behaviours: str) -> Mediator:
    store = FakeStore()
    return Mediator(
        commands={Greet: recorder.greet},
        queries={HowMany: recorder.how_many},
        uow_factory=lambda: FakeUnitOfWork(store),
        behaviours=[recorder.behaviour(name) for name in behaviours],
    )


async def test_send_returns_what_the_handler_returns() -> None:
    recorder = Recorder()
    assert await mediator(recorder).send(Greet("ada")) == "hello ada"
    assert recorder.log == ["handler ada"]


async def test_each_command_gets_a_fresh_unit_of_work() -> None:
    recorder = Recorder()
    bus = mediator(recorder)
    await bus.send(Greet("a"))
    await bus.send(Greet("b"))
    first, second = recorder.uows
    assert isinstance(first, FakeUnitOfWork)
    assert first is not second


async def test_behaviours_run_in_order_around_commands() -> None:
    recorder = Recorder()
    await mediator(recorder, "outer", "inner").send(Greet("ada"))
    assert recorder.log == [
        "outer before Greet",
        "inner before Greet",
        "handler ada",
        "inner after 'hello ada'",
        "outer after 'hello ada'",
    ]


async def test_behaviours_run_around_queries_too() -> None:
    recorder = Recorder()
    assert await mediator(recorder, "timing").ask(HowMany()) == 2
    assert recorder.log == ["timing before HowMany", "query", "timing after 2"]


async def test_a_behaviour_can_stop_the_message() -> None:
    recorder = Recorder()

    async def refuse(message: object, call_next: Callable[[], Awaitable[object]]) -> object:
        return "refused"

    store = FakeStore()
    bus = Mediator({Greet: recorder.greet}, {}, lambda: FakeUnitOfWork(store), [refuse])
    assert await bus.send(Greet("ada")) == "refused"
    assert recorder.log == []


async def test_an_exception_from_a_handler_passes_through_every_behaviour() -> None:
    recorder = Recorder()

    async def broken(cmd: Greet, uow: UnitOfWork) -> str:
        raise RuntimeError("boom")

    store = FakeStore()
    bus = Mediator({Greet: broken}, {}, lambda: FakeUnitOfWork(store), [recorder.behaviour("log")])
    with pytest.raises(RuntimeError, match="boom"):
        await bus.send(Greet("ada"))
    assert recorder.log == ["log before Greet"]


async def test_unregistered_messages_raise_unknown_message() -> None:
    recorder = Recorder()
    bus = mediator(recorder, "log")
    with pytest.raises(UnknownMessage, match="Unregistered"):
        await bus.send(Unregistered())
    with pytest.raises(UnknownMessage, match="Unasked"):
        await bus.ask(Unasked())
    assert recorder.log == []
