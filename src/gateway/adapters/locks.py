"""Per-process, non-blocking named locks: the first holder wins, the others learn at once."""

from __future__ import annotations

import threading


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

    def hold(self, name: str) -> _Hold:
        return _Hold(self, name)

    def _take(self, name: str) -> bool:
        with self._guard:
            if name in self._held:
                return False
            self._held.add(name)
            return True

    def _release(self, name: str) -> None:
        with self._guard:
            self._held.discard(name)


class _Hold:
    """`async with locks.hold(name) as held`: a class rather than a generator-based
    context manager, which costs several times more on every payment request."""

    __slots__ = ("_locks", "_name", "_taken")

    def __init__(self, locks: InProcessKeyLocks, name: str) -> None:
        self._locks, self._name, self._taken = locks, name, False

    async def __aenter__(self) -> bool:
        self._taken = self._locks._take(self._name)
        return self._taken

    async def __aexit__(self, *_exc: object) -> None:
        if self._taken:
            self._locks._release(self._name)
