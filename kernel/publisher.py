"""Appending events to the log, durably: a 'published' answer means the broker acknowledged with acks=all."""

import asyncio
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from kernel.kafka import make_producer
from kernel.metrics import EVENTS_PRODUCED
from kernel.producer_connection import ProducerConnection
from kernel.settings import Settings
from schemas.codec import encode
from schemas.events import Event


@dataclass(frozen=True)
class Appended:
    """Where an event landed in the log."""

    topic: str
    partition: int
    offset: int


class LogUnavailable(RuntimeError):
    """The broker did not acknowledge in time; the event may or may not be in the log."""


class EventPublisher(Protocol):
    async def publish(self, event: Event) -> Appended: ...


class KafkaEventPublisher:
    """Appends events and waits, up to ``timeout_seconds``, for the broker's acknowledgement.

    A timeout does not take the record back: the producer still holds it and may deliver it once the brokers
    answer again. Publishing the same event again (a caller retrying after LogUnavailable) therefore waits for that
    first delivery instead of appending a second copy; only a delivery that failed is sent anew.
    """

    # How long a delivery that nobody waits for any more is remembered, for a retry of the same event to find it.
    REMEMBERED_SECONDS = 300.0

    def __init__(self, connection: ProducerConnection, topic: str, timeout_seconds: float) -> None:
        self._connection = connection
        self._topic = topic
        self._timeout = timeout_seconds
        self._in_flight: dict[uuid.UUID, asyncio.Future[RecordMetadata]] = {}

    async def publish(self, event: Event) -> Appended:
        delivery = self._in_flight.get(event.event_id)
        producer = self._connection.producer
        try:
            if delivery is None:
                if producer is None:
                    raise LogUnavailable(f"not connected to the broker: {self._connection.last_error}")
                delivery = await self._send(producer, event)
            # Shielded: the wait may time out, the delivery goes on (and a retry of this event waits for it).
            metadata = await asyncio.wait_for(asyncio.shield(delivery), self._timeout)
        except (TimeoutError, KafkaError) as exc:
            if producer is not None:
                self._connection.replace_if_ended(producer, exc)
            raise LogUnavailable(f"the broker did not acknowledge the event: {exc!r}") from exc
        self._in_flight.pop(event.event_id, None)
        EVENTS_PRODUCED.labels(event_type=event.event_type).inc()
        return Appended(topic=metadata.topic, partition=metadata.partition, offset=metadata.offset)

    async def settled(self, patience_seconds: float) -> int:
        """Waits up to ``patience_seconds`` for the deliveries in flight (also those their callers stopped waiting
        for); how many are still unanswered."""
        pending = [delivery for delivery in self._in_flight.values() if not delivery.done()]
        if not pending:
            return 0
        _, unanswered = await asyncio.wait(pending, timeout=patience_seconds)
        return len(unanswered)

    async def _send(self, producer: AIOKafkaProducer, event: Event) -> "asyncio.Future[RecordMetadata]":
        key, value, headers = encode(event)
        delivery: asyncio.Future[RecordMetadata] = await asyncio.wait_for(
            producer.send(self._topic, value=value, key=key, headers=headers), self._timeout
        )
        self._in_flight[event.event_id] = delivery
        delivery.add_done_callback(partial(self._settled, event.event_id))
        return delivery

    def _settled(self, event_id: uuid.UUID, delivery: "asyncio.Future[RecordMetadata]") -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            # Not in the log: a retry must send it again.
            self._in_flight.pop(event_id, None)
            return
        asyncio.get_running_loop().call_later(self.REMEMBERED_SECONDS, self._forget, event_id, delivery)

    def _forget(self, event_id: uuid.UUID, delivery: "asyncio.Future[RecordMetadata]") -> None:
        if self._in_flight.get(event_id) is delivery:
            del self._in_flight[event_id]


class KafkaRecordSender:
    """Plain records (work items, not events) to any topic, durably; many in flight at once."""

    def __init__(self, connection: ProducerConnection, timeout_seconds: float) -> None:
        self._connection = connection
        self._timeout = timeout_seconds

    async def send_all(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Sends (key, value) pairs and returns once the broker acknowledged every one."""
        producer = self._connection.producer
        if producer is None:
            raise LogUnavailable(f"not connected to the broker: {self._connection.last_error}")
        try:
            deliveries = [
                await asyncio.wait_for(producer.send(topic, value=value, key=key), self._timeout)
                for key, value in records
            ]
            await asyncio.wait_for(asyncio.gather(*deliveries), self._timeout + len(records) * 0.01)
        except (TimeoutError, KafkaError) as exc:
            self._connection.replace_if_ended(producer, exc)
            raise LogUnavailable(f"the broker did not acknowledge the records: {exc!r}") from exc


async def append_event(settings: Settings, event: Event) -> None:
    """Appends one event on a producer of its own, for a command or an operator's click, and returns once the broker
    has acknowledged it (acks=all, idempotent producer), within ``publish_timeout_seconds``."""
    producer = make_producer(settings)
    await producer.start()
    try:
        key, value, headers = encode(event)
        await asyncio.wait_for(
            producer.send_and_wait(settings.job_events_topic, value=value, key=key, headers=headers),
            settings.publish_timeout_seconds,
        )
    finally:
        await producer.stop()
