import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import RecordMetadata, TopicPartition

from kernel.publisher import KafkaEventPublisher, LogUnavailable
from schemas.events import JobRequested, JobRequestedPayload


class SlowProducer:
    """Queues each record and leaves its delivery to the test, as a producer does while the brokers are away."""

    def __init__(self) -> None:
        self.deliveries: list[asyncio.Future[RecordMetadata]] = []

    async def send(self, topic: str, **_: Any) -> asyncio.Future[RecordMetadata]:
        delivery: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery


class Connection:
    def __init__(self, producer: SlowProducer) -> None:
        self.producer = producer
        self.last_error: BaseException | None = None

    def replace_if_ended(self, producer: object, error: BaseException) -> None:
        self.last_error = error


def request() -> JobRequested:
    job_id = uuid.uuid4()
    return JobRequested(
        tenant_id="acme",
        job_id=job_id,
        correlation_id=str(job_id),
        producer="test",
        payload=JobRequestedPayload(job_type="noop", parameters={}),
    )


def metadata(offset: int) -> RecordMetadata:
    return RecordMetadata("events", 0, TopicPartition("events", 0), offset, 0, -1, 0)


async def test_publishing_again_after_a_timeout_waits_for_the_first_delivery_instead_of_appending_a_copy() -> None:
    producer = SlowProducer()
    publisher = KafkaEventPublisher(Connection(producer), "events", timeout_seconds=0.05)  # type: ignore[arg-type]
    event = request()

    with pytest.raises(LogUnavailable):
        await publisher.publish(event)
    producer.deliveries[0].set_result(metadata(41))  # the brokers are back: the first copy lands
    appended = await publisher.publish(event)

    assert len(producer.deliveries) == 1
    assert appended.offset == 41


async def test_a_delivery_that_failed_is_sent_again() -> None:
    producer = SlowProducer()
    publisher = KafkaEventPublisher(Connection(producer), "events", timeout_seconds=0.05)  # type: ignore[arg-type]
    event = request()

    with pytest.raises(LogUnavailable):
        await publisher.publish(event)
    producer.deliveries[0].set_exception(KafkaTimeoutError())  # the producer gave the batch up
    await asyncio.sleep(0)
    retry = asyncio.create_task(publisher.publish(event))
    await asyncio.sleep(0.01)
    producer.deliveries[1].set_result(metadata(42))

    assert (await retry).offset == 42
    assert len(producer.deliveries) == 2


async def test_other_events_are_sent_each_on_their_own() -> None:
    producer = SlowProducer()
    publisher = KafkaEventPublisher(Connection(producer), "events", timeout_seconds=1)  # type: ignore[arg-type]

    first = asyncio.create_task(publisher.publish(request()))
    second = asyncio.create_task(publisher.publish(request()))
    await asyncio.sleep(0.01)
    for offset, delivery in enumerate(producer.deliveries):
        delivery.set_result(metadata(offset))

    assert {(await first).offset, (await second).offset} == {0, 1}


async def test_settling_waits_for_deliveries_still_unanswered_also_those_nobody_waits_for_any_more() -> None:
    producer = SlowProducer()
    publisher = KafkaEventPublisher(Connection(producer), "events", timeout_seconds=0.05)  # type: ignore[arg-type]
    with pytest.raises(LogUnavailable):
        await publisher.publish(request())  # its caller gave up; the producer still holds the record

    asyncio.get_running_loop().call_later(0.05, producer.deliveries[0].set_result, metadata(7))
    assert await publisher.settled(patience_seconds=5) == 0
    assert producer.deliveries[0].done()


async def test_settling_gives_up_after_its_patience_and_says_how_many_are_unanswered() -> None:
    producer = SlowProducer()
    publisher = KafkaEventPublisher(Connection(producer), "events", timeout_seconds=0.01)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(LogUnavailable):
            await publisher.publish(request())

    assert await publisher.settled(patience_seconds=0.05) == 2
    assert await KafkaEventPublisher(Connection(SlowProducer()), "events", 1).settled(0.05) == 0  # type: ignore[arg-type]
