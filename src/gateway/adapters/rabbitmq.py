"""RabbitMQ over aio-pika: one robust connection per process, publisher confirms.

`aio_pika.connect_robust` reconnects by itself after a broker restart and declares the
topology and consumers again; a publish while it is away fails fast, so the relay keeps
its rows unsent and backs off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractConnection,
    AbstractExchange,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from gateway.adapters.rabbitmq_consumer import Consumer, Handle
from gateway.adapters.rabbitmq_messages import encode
from gateway.adapters.rabbitmq_topology import Topology, declare
from gateway.application.ports import OutboxMessage

_log = structlog.get_logger("gateway.broker")


class PublishFailed(Exception):
    """The broker did not confirm every message of a batch (nack, return, lost channel)."""


class RabbitPublisher:
    """Publishes a whole batch at once and waits for every confirm (pipelined)."""

    def __init__(
        self,
        exchange: AbstractExchange,
        *,
        timeout_s: float = 30.0,
        on_confirmed: Callable[[int], None] | None = None,
    ) -> None:
        self._exchange = exchange
        self._timeout_s = timeout_s
        self._on_confirmed = on_confirmed

    async def publish(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        async with asyncio.timeout(self._timeout_s):
            confirms = await asyncio.gather(
                *(self._publish_one(message) for message in messages), return_exceptions=True
            )
        failed = [c for c in confirms if not isinstance(c, aiormq.spec.Basic.Ack)]
        if failed:
            cause = next((c for c in failed if isinstance(c, BaseException)), None)
            raise PublishFailed(f"{len(failed)} of {len(messages)} not confirmed") from cause
        if self._on_confirmed is not None:
            self._on_confirmed(len(messages))

    async def _publish_one(self, message: OutboxMessage) -> object:
        return await self._exchange.publish(encode(message), message.kind, mandatory=True)


class RabbitBroker:
    def __init__(
        self,
        url: str,
        topology: Topology,
        *,
        reconnect_interval_s: float = 2.0,
        publish_timeout_s: float = 30.0,
    ) -> None:
        self._url = url
        self.topology = topology
        self._reconnect_interval_s = reconnect_interval_s
        self._publish_timeout_s = publish_timeout_s
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._connecting = asyncio.Lock()

    @property
    def is_connected(self) -> bool:
        connection = self._connection
        return connection is not None and connection.connected.is_set()

    async def connect(self, *, retry: bool = True, max_delay_s: float = 30.0) -> None:
        """Connects and declares the topology. While the broker is down, tries again with
        growing pauses (or raises at once without `retry`)."""
        delay = 0.5
        async with self._connecting:
            while self._connection is None:
                try:
                    await self._open()
                except (OSError, aiormq.exceptions.AMQPError, TimeoutError) as error:
                    if not retry:
                        raise
                    _log.warning("broker_unavailable", error=type(error).__name__, retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, max_delay_s)

    async def _open(self) -> None:
        connection = await aio_pika.connect_robust(
            self._url, reconnect_interval=self._reconnect_interval_s, timeout=10
        )
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await declare(channel, self.topology)
        except BaseException:
            await connection.close()
            raise
        connection.close_callbacks.add(_on_lost)
        connection.reconnect_callbacks.add(_on_reconnected)
        self._connection, self._channel = connection, channel
        _log.info("broker_connected", exchange=self.topology.exchange)

    def publisher(self, on_confirmed: Callable[[int], None] | None = None) -> RabbitPublisher:
        assert self._exchange is not None, "connect() first"
        return RabbitPublisher(
            self._exchange, timeout_s=self._publish_timeout_s, on_confirmed=on_confirmed
        )

    async def consume_payments(self, handle: Handle, prefetch: int) -> Consumer:
        arguments = self.topology.queue_arguments()
        return await self._consume(self.topology.queue, arguments, handle, prefetch)

    async def consume_dead_letters(self, handle: Handle, prefetch: int = 16) -> Consumer:
        arguments = self.topology.dead_letter_arguments()
        return await self._consume(self.topology.dead_letter_queue, arguments, handle, prefetch)

    async def consume_webhooks(self, handle: Handle, prefetch: int) -> Consumer:
        arguments = self.topology.webhook_queue_arguments()
        return await self._consume(self.topology.webhook_queue, arguments, handle, prefetch)

    async def confirming_channel(self) -> AbstractRobustChannel:
        """A channel of its own with publisher confirms (for delayed webhook retries)."""
        assert self._connection is not None, "connect() first"
        return await self._connection.channel(publisher_confirms=True)

    async def _consume(
        self, name: str, arguments: dict[str, Any], handle: Handle, prefetch: int
    ) -> Consumer:
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.declare_queue(name, durable=True, arguments=arguments)
        consumer = Consumer(queue, handle)
        await consumer.start()
        return consumer

    async def dead_letter_depth(self) -> int:
        """Messages waiting in the dead-letter queue."""
        assert self._channel is not None, "connect() first"
        channel = await self._channel.get_underlay_channel()
        declared = await channel.queue_declare(self.topology.dead_letter_queue, passive=True)
        return int(declared.message_count or 0)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = self._channel = self._exchange = None


def _on_lost(connection: AbstractConnection | None, error: BaseException | None = None) -> None:
    closing = connection is not None and connection.close_called  # our own close()
    if error is not None and not closing:
        _log.warning("broker_connection_lost", error=type(error).__name__)


def _on_reconnected(_: object) -> None:
    _log.info("broker_reconnected")
