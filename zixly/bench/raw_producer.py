"""The Kafka baseline: a raw aiokafka producer with the receiver's settings (acks=all, idempotent)."""

import asyncio
import time

from kernel.kafka import make_producer
from kernel.settings import Settings
from zixly.bench.load import BODY


async def produce_for(settings: Settings, topic: str, seconds: float, in_flight: int = 64) -> tuple[int, float]:
    """Messages acknowledged, and per second, with ``in_flight`` concurrent senders each awaiting its ack."""
    producer = make_producer(settings)
    await producer.start()
    value = BODY.encode()
    acknowledged = 0
    deadline = time.perf_counter() + seconds

    async def sender(index: int) -> None:
        nonlocal acknowledged
        key = f"bench-{index}".encode()
        while time.perf_counter() < deadline:
            await producer.send_and_wait(topic, value=value, key=key)
            acknowledged += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(sender(i) for i in range(in_flight)))
    finally:
        await producer.stop()
    return acknowledged, acknowledged / (time.perf_counter() - started)
