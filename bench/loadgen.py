"""A closed-loop HTTP load generator on asyncio: N connections, each sending its next
request as soon as the previous answer arrived, latencies timed with `perf_counter`.

Two clients speak the same HTTP/1.1 keep-alive: `httpx` (one `AsyncClient` per
connection) and `raw` (asyncio streams with the request bytes built by hand). `raw`
spends roughly a fifth of httpx's CPU per request, which matters on a small machine
where the generator shares the cores with the server it measures: it is the default.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import msgspec


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


MakeRequest = Callable[[int], Request]
"""The n-th request of the run (n counts from 0 across all connections)."""
OnAnswer = Callable[[Request, Answer], None]


@dataclass
class LoadResult:
    seconds: float
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    last_answer_at: float = 0.0

    @classmethod
    def pooled(cls, results: list[LoadResult]) -> LoadResult:
        """One result of several windows: their answers together, their seconds added."""
        pool = cls(seconds=sum(result.seconds for result in results))
        for result in results:
            pool.latencies_s += result.latencies_s
            pool.statuses += result.statuses
            pool.errors += result.errors
            pool.last_answer_at = max(pool.last_answer_at, result.last_answer_at)
        return pool

    @property
    def count(self) -> int:
        return len(self.latencies_s)

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index] * 1000

    def summary(self) -> dict[str, object]:
        return {
            "requests": self.count,
            "seconds": round(self.seconds, 2),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.percentile_ms(0.50), 2),
            "p90_ms": round(self.percentile_ms(0.90), 2),
            "p99_ms": round(self.percentile_ms(0.99), 2),
            "max_ms": round(self.percentile_ms(1.0), 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
        }


Send = Callable[[Request], Awaitable[Answer]]


class _RawConnection:
    """One keep-alive HTTP/1.1 connection; answers must carry Content-Length."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, request: Request) -> Answer:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        lines = [f"{request.method} {request.path} HTTP/1.1", f"Host: {self._host}"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        lines.append(f"Content-Length: {len(request.body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + request.body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self._reader.readexactly(length) if length else b""
        return Answer(status, body)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = self._reader = None


class _HttpxConnection:
    def __init__(self, base_url: str) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30)

    async def send(self, request: Request) -> Answer:
        response = await self._client.request(
            request.method, request.path, headers=request.headers, content=request.body
        )
        return Answer(response.status_code, response.content)

    async def close(self) -> None:
        await self._client.aclose()


def _connection(base_url: str, client: str) -> _RawConnection | _HttpxConnection:
    if client == "httpx":
        return _HttpxConnection(base_url)
    parts = urlsplit(base_url)
    return _RawConnection(parts.hostname or "127.0.0.1", parts.port or 80)


async def run_load(
    base_url: str,
    make_request: MakeRequest,
    *,
    connections: int,
    seconds: float | None = None,
    total: int | None = None,
    client: str = "raw",
    on_answer: OnAnswer | None = None,
    pause_s: float = 0.0,
    stop: asyncio.Event | None = None,
    rate: float | None = None,
) -> LoadResult:
    """Runs until `seconds` passed, `total` requests were answered or `stop` is set,
    whichever first. `pause_s`: each connection waits that long after every answer.
    `rate`: request n is not sent before `n / rate` seconds after the start (an offered
    rate, as long as the connections keep up with it)."""
    if seconds is None and total is None and stop is None:
        raise ValueError("give seconds, total or stop")
    stop = stop or asyncio.Event()
    result = LoadResult(seconds=0.0)
    counter = iter(range(total if total is not None else 1 << 62))
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else float("inf")

    async def one_connection() -> None:
        connection = _connection(base_url, client)
        try:
            while (
                not stop.is_set()
                and time.perf_counter() < deadline
                and (n := next(counter, None)) is not None
            ):
                if rate is not None and (wait := started + n / rate - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                request = make_request(n)
                sent = time.perf_counter()
                try:
                    answer = await connection.send(request)
                except (OSError, asyncio.IncompleteReadError, httpx.HTTPError):
                    result.errors += 1
                    await connection.close()
                    connection = _connection(base_url, client)
                    continue
                done = time.perf_counter()
                result.latencies_s.append(done - sent)
                result.statuses[answer.status] += 1
                result.last_answer_at = done
                if on_answer is not None:
                    on_answer(request, answer)
                if pause_s:
                    await asyncio.sleep(pause_s)
        finally:
            await connection.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


def json_body(value: object) -> bytes:
    return msgspec.json.encode(value)
