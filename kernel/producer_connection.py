"""A Kafka producer that may not be connected yet: services start (and answer 503) while the broker is down."""

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidProducerEpoch, OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId

from kernel.logging import get_logger

log = get_logger(__name__)

# Errors after which an idempotent producer's session is over for good: aiokafka's sender stops, and every later
# send fails the same way. A broker restart that loses a batch in flight ends a session like this (seen in the
# broker-restart test: OutOfOrderSequenceNumber on every later append). A new producer gets a new id.
SESSION_ENDING = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced)


class ProducerConnection:
    """Starts a producer, retrying in the background until the broker answers."""

    def __init__(self, factory: Callable[[], AIOKafkaProducer], retry_seconds: float = 2.0) -> None:
        self._factory = factory
        self._retry_seconds = retry_seconds
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None

    @property
    def producer(self) -> AIOKafkaProducer | None:
        return self._producer

    async def start(self) -> None:
        """Try once now; on failure keep trying in the background and return."""
        if not await self._try_start():
            self._task = asyncio.create_task(self._keep_trying(), name="kafka-producer-connect")

    async def _try_start(self) -> bool:
        producer = self._factory()
        try:
            await producer.start()
        except Exception as exc:  # any failure to bootstrap means: not connected yet
            self.last_error = f"{type(exc).__name__}: {exc}"
            await producer.stop()
            return False
        self._producer, self.last_error = producer, None
        return True

    def replace_if_ended(self, producer: AIOKafkaProducer, error: BaseException) -> None:
        """After ``error`` from ``producer``: if it ended the producer's session, start a new producer in the
        background (sends meanwhile fail as "not connected", which callers retry or answer with 503)."""
        current = self._producer
        if not isinstance(error, SESSION_ENDING) or current is None or producer is not current:
            return  # another error, or a producer already replaced
        log.warning("the broker ended the producer's session; starting a new producer", error=repr(error))
        self._producer, self.last_error = None, f"producer session ended: {error!r}"
        self._retired.add(asyncio.create_task(current.stop(), name="kafka-producer-retire"))
        self._task = asyncio.create_task(self._keep_trying(), name="kafka-producer-connect")

    async def _keep_trying(self) -> None:
        log.warning("broker unreachable, will keep trying", error=self.last_error)
        while not await self._try_start():
            await asyncio.sleep(self._retry_seconds)
        log.info("connected to the broker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._retired, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
