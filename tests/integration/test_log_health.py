"""The projector's view of the log's health (kernel/log_health.py), against the tests' real broker."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from kernel.kafka import delete_topic, ensure_topics, make_consumer, make_producer
from kernel.log_health import LogHealth
from kernel.settings import Settings
from kernel.topics import TopicSpec


@pytest.fixture
async def topic(stack: Settings) -> AsyncIterator[str]:
    name = f"zixly.health-{uuid.uuid4().hex[:8]}"
    await ensure_topics(stack, [TopicSpec(name, partitions=2)])
    producer = make_producer(stack)
    await producer.start()
    try:
        for n in range(10):
            await producer.send_and_wait(name, b"x", key=b"k", partition=n % 2)
    finally:
        await producer.stop()
    yield name
    await delete_topic(stack, name)


async def commit(settings: Settings, group: str, topic: str, offsets: dict[int, int]) -> None:
    consumer = make_consumer(settings, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in offsets])
        await consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in offsets.items()})
    finally:
        await consumer.stop()


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the gauges never showed it"
        await asyncio.sleep(0.1)


async def test_a_groups_lag_is_what_it_has_not_committed_over_the_topics_partitions(
    stack: Settings, topic: str
) -> None:
    group = f"zixly-health-{uuid.uuid4().hex[:8]}"
    await commit(stack, group, topic, {0: 2, 1: 5})  # 5 records on each partition: 3 and 0 behind

    await LogHealth(stack, [topic]).refresh()

    assert sample("zixly_consumer_group_lag", group=group, topic=topic) == 3
    assert sample("zixly_kafka_under_replicated_partitions", topic=topic) == 0
    assert sample("zixly_kafka_offline_partitions", topic=topic) == 0


async def test_watching_follows_new_commits_round_after_round_and_stops_when_told(stack: Settings, topic: str) -> None:
    group = f"zixly-health-{uuid.uuid4().hex[:8]}"
    await commit(stack, group, topic, {0: 0, 1: 0})
    stopping = asyncio.Event()
    watching = asyncio.create_task(LogHealth(stack, [topic]).watch(0.2, stopping))

    await until(lambda: sample("zixly_consumer_group_lag", group=group, topic=topic) == 10)
    await commit(stack, group, topic, {0: 5, 1: 4})
    await until(lambda: sample("zixly_consumer_group_lag", group=group, topic=topic) == 1)

    stopping.set()
    await asyncio.wait_for(watching, 5)
