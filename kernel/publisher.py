"""Appending events to the log, durably: a 'published' answer means the broker acknowledged with acks=all."""

import asyncio
from dataclasses import dataclass
from typing import Protocol

from aiokafka.errors import KafkaError

from kernel.metrics import EVENTS_PRODUCED
from kernel.producer_connection import ProducerConnection
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
    def __init__(self, connection: ProducerConnection, topic: str, timeout_seconds: float) -> None:
        self._connection = connection
        self._topic = topic
        self._timeout = timeout_seconds

    async def publish(self, event: Event) -> Appended:
        producer = self._connection.producer
        if producer is None:
            raise LogUnavailable(f"not connected to the broker: {self._connection.last_error}")
        key, value, headers = encode(event)
        try:
            delivery = await asyncio.wait_for(
                producer.send(self._topic, value=value, key=key, headers=headers), self._timeout
            )
            metadata = await asyncio.wait_for(delivery, self._timeout)
        except (TimeoutError, KafkaError) as exc:
            self._connection.replace_if_ended(producer, exc)
            raise LogUnavailable(f"the broker did not acknowledge the event: {exc!r}") from exc
        EVENTS_PRODUCED.labels(event_type=event.event_type).inc()
        return Appended(topic=metadata.topic, partition=metadata.partition, offset=metadata.offset)


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
