"""Per-process, non-blocking named locks: the first holder wins, the others learn at once."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class InProcessKeyLocks:
    """Holds a name only while its `async with` block runs; free names are not kept."""

    __slots__ = ("_guard", "_held")

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._guard = threading.Lock()

    @property
    def held(self) -> int:
        """How many names are held right now."""
        return len(self._held)

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[bool]:
        with self._guard:
            taken = name in self._held
            self._held.add(name)
        if taken:
            yield False
            return
        try:
            yield True
        finally:
            with self._guard:
                self._held.discard(name)
