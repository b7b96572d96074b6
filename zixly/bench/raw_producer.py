"""The Kafka baseline: a raw aiokafka producer with the receiver's settings (acks=all, idempotent)."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from kernel.kafka import make_producer
from kernel.settings import Settings
from zixly.bench.load import BODY


async def produce_for(settings: Settings, topic: str, seconds: float, in_flight: int = 64) -> tuple[int, float]:
    """Messages acknowledged, and per second, with ``in_flight`` concurrent senders each awaiting its ack."""
    producer = make_producer(settings)
    await producer.start()
    value = BODY.encode()

    async def send(key: bytes) -> None:
        await producer.send_and_wait(topic, value=value, key=key)

    try:
        return await _saturate(send, seconds, in_flight)
    finally:
        await producer.stop()


async def _saturate(send: Callable[[bytes], Awaitable[None]], seconds: float, in_flight: int) -> tuple[int, float]:
    """``in_flight`` senders, each awaiting ``send`` (its ack) before the next, for ``seconds``: how many were
    acknowledged, and per second."""
    acknowledged = 0
    deadline = time.perf_counter() + seconds

    async def sender(index: int) -> None:
        nonlocal acknowledged
        key = f"bench-{index}".encode()
        while time.perf_counter() < deadline:
            await send(key)
            acknowledged += 1

    started = time.perf_counter()
    await asyncio.gather(*(sender(i) for i in range(in_flight)))
    return acknowledged, acknowledged / (time.perf_counter() - started)


async def produce_for_librdkafka(
    settings: Settings, topic: str, seconds: float, in_flight: int = 64
) -> tuple[int, float]:
    """The same with confluent-kafka (librdkafka), which keeps up to 5 idempotent produce requests in flight per
    connection where aiokafka keeps one: its deliveries come back on a polling thread and are handed to the loop."""
    from confluent_kafka import KafkaError, Message, Producer

    if settings.kafka_security_protocol != "PLAINTEXT":
        raise RuntimeError("the librdkafka baseline runs against the local stack's plaintext listener only")
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
            "batch.size": 256 * 1024,
        }
    )
    loop = asyncio.get_running_loop()
    polling = True

    def poll() -> None:
        while polling:
            producer.poll(0.05)

    poller = loop.run_in_executor(None, poll)
    value = BODY.encode()

    async def send(key: bytes) -> None:
        delivered: asyncio.Future[None] = loop.create_future()

        def report(error: KafkaError | None, _message: Message) -> None:
            loop.call_soon_threadsafe(_settle, delivered, RuntimeError(str(error)) if error is not None else None)

        producer.produce(topic, value=value, key=key, on_delivery=report)
        await delivered

    try:
        return await _saturate(send, seconds, in_flight)
    finally:
        polling = False
        await poller
        await loop.run_in_executor(None, producer.flush, 10)


def _settle(delivered: "asyncio.Future[None]", error: Exception | None) -> None:
    if delivered.done():
        return
    if error is None:
        delivered.set_result(None)
    else:
        delivered.set_exception(error)
