"""The consumer's acks, sent together, against a model of the broker's rules.

Whatever order the handlers settle in, every ack the consumer writes must name a tag
the broker still holds unacked (else the broker closes the channel), and must cover
only deliveries whose handler acked them (else a crash would lose one). After
`send_all`, every acked delivery is acked at the broker and only the unsettled ones
are left.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, cast

from aio_pika.abc import AbstractIncomingMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapters.rabbitmq_consumer import ChannelAcks

ACK, NACK, ABANDON = "ack", "nack", "abandon"


class Broker:
    """What RabbitMQ holds of one channel: the delivery tags not settled yet."""

    def __init__(self, tags: range) -> None:
        self.unacked = set(tags)
        self.acked_by_handler: set[int] = set()
        self.violations: list[str] = []

    def settle(self, tag: int, *, multiple: bool) -> None:
        if tag not in self.unacked:
            self.violations.append(f"unknown delivery tag {tag}")
            return
        covered = {t for t in self.unacked if t <= tag} if multiple else {tag}
        if early := covered - self.acked_by_handler:
            self.violations.append(f"ack {tag} (multiple={multiple}) covers unsettled {early}")
        self.unacked -= covered

    def nack(self, tag: int) -> None:
        if tag not in self.unacked:
            self.violations.append(f"nack of unknown delivery tag {tag}")
        self.unacked.discard(tag)


class Channel:
    """aiormq's channel as the consumer uses it; each write may take a few passes of
    the loop, as aiormq's bounded write queue does."""

    def __init__(self, broker: Broker, rng: random.Random) -> None:
        self.broker = broker
        self.rng = rng

    async def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        for _ in range(self.rng.randrange(3)):
            await asyncio.sleep(0)
        self.broker.settle(delivery_tag, multiple=multiple)


class Message:
    def __init__(self, channel: Channel, tag: int) -> None:
        self.channel = channel
        self.delivery_tag = tag
        self.processed = False

    async def nack(self) -> None:  # written before aio-pika marks it processed
        self.channel.broker.nack(self.delivery_tag)
        self.processed = True


fates = st.lists(st.sampled_from([ACK, ACK, ACK, NACK, ABANDON]), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(fates=fates, seed=st.integers(0, 2**32 - 1))
def test_acks_sent_together_obey_the_broker_and_never_run_ahead(
    fates: list[str], seed: int
) -> None:
    # A seed draws the order of settling and the loop's passes (Hypothesis's own random
    # draws lean on small values and seldom interleave the writes).
    asyncio.run(_settle_all(fates, random.Random(seed)))


async def _settle_all(fates: list[str], rng: random.Random) -> None:
    tags = range(1, len(fates) + 1)
    broker = Broker(tags)
    channel = Channel(broker, rng)
    acks = ChannelAcks(straggler_s=0.001)
    messages = {tag: Message(channel, tag) for tag in tags}
    for message in messages.values():
        acks.delivered(_as_incoming(message))

    for tag in rng.sample(list(tags), len(fates)):
        fate = fates[tag - 1]
        if fate == ACK:
            broker.acked_by_handler.add(tag)
            await acks.ack(_as_incoming(messages[tag]))
        elif fate == NACK:
            await messages[tag].nack()
        if rng.random() < 0.3:  # the loop runs on: flushes, writes, a straggler timer
            await asyncio.sleep(rng.choice([0, 0, 0.002]))
    await acks.send_all()

    assert broker.violations == []
    assert broker.unacked == {tag for tag in tags if fates[tag - 1] == ABANDON}


async def test_acks_settled_in_one_pass_go_out_as_one_multiple_ack() -> None:
    broker = Broker(range(1, 11))
    sent: list[tuple[int, bool]] = []

    class Recording(Channel):
        async def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
            sent.append((delivery_tag, multiple))
            await super().basic_ack(delivery_tag, multiple)

    channel = Recording(broker, random.Random(0))
    acks = ChannelAcks(straggler_s=60)
    messages = [Message(channel, tag) for tag in range(1, 11)]
    for message in messages:
        acks.delivered(_as_incoming(message))
    for message in messages[:6]:
        broker.acked_by_handler.add(message.delivery_tag)
        await acks.ack(_as_incoming(message))
    for message in messages[7:]:  # tag 7 is still being handled
        broker.acked_by_handler.add(message.delivery_tag)
        await acks.ack(_as_incoming(message))
    await asyncio.sleep(0.01)

    assert sent == [(6, True)]  # 8-10 wait behind 7 (for at most straggler_s)
    broker.acked_by_handler.add(7)
    await acks.ack(_as_incoming(messages[6]))
    await acks.send_all()
    assert sent == [(6, True), (10, True)]
    assert broker.unacked == set()


def _as_incoming(message: Message) -> AbstractIncomingMessage:
    return cast("AbstractIncomingMessage", cast("Any", message))


async def test_behind_a_delivery_that_never_ends_only_it_is_kept() -> None:
    broker = Broker(range(1, 202))
    acks = ChannelAcks(straggler_s=0.001)
    channel = Channel(broker, random.Random(0))
    messages = [Message(channel, tag) for tag in range(1, 202)]
    for message in messages:
        acks.delivered(_as_incoming(message))
    for message in messages[1:]:  # tag 1 hangs
        broker.acked_by_handler.add(message.delivery_tag)
        await acks.ack(_as_incoming(message))
        if message.delivery_tag % 50 == 0:
            await asyncio.sleep(0.005)
    await asyncio.sleep(0.005)

    assert acks.outstanding == 1
    assert broker.unacked == {1}
    assert broker.violations == []
