"""Shared fixtures live in `tests/fixtures/`, one module per concern."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.rabbitmq",
    "tests.fixtures.processes",
    "tests.fixtures.faults",
]
