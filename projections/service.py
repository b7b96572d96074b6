"""The projector's consume loop: Kafka group membership, seeking to stored checkpoints, retrying the store."""

import asyncio
import time
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential, wait_random

from kernel.log_reader import LogRecord
from kernel.logging import get_logger
from projections.metrics import BATCH_SECONDS, BATCH_SIZE, CHECKPOINT, LAG, STORE_RETRIES
from projections.projector import Projector

log = get_logger(__name__)


class _SeekToCheckpoints(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: AIOKafkaConsumer, projector: Projector, topic: str) -> None:
        self._consumer = consumer
        self._projector = projector
        self._topic = topic

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None  # every batch is committed before the next poll, so there is nothing to flush

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        stored = await self._projector.load_checkpoints(self._topic)
        for tp in assigned:
            if tp.partition in stored:
                self._consumer.seek(tp, stored[tp.partition])
            else:
                await self._consumer.seek_to_beginning(tp)
        log.info(
            "partitions assigned",
            partitions=sorted(tp.partition for tp in assigned),
            checkpoints={tp.partition: stored.get(tp.partition, 0) for tp in assigned},
        )


class ProjectorService:
    def __init__(self, consumer: AIOKafkaConsumer, projector: Projector, topic: str, batch_size: int) -> None:
        self._consumer = consumer
        self._projector = projector
        self._topic = topic
        self._batch_size = batch_size
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        self._consumer.subscribe(
            [self._topic], listener=_SeekToCheckpoints(self._consumer, self._projector, self._topic)
        )
        await self._consumer.start()
        try:
            while not self._stopping.is_set():
                fetched = await self._consumer.getmany(timeout_ms=500, max_records=self._batch_size)
                records = [
                    LogRecord(r.topic, r.partition, r.offset, r.value, tuple(r.headers or ()), r.key, r.timestamp)
                    for batch in fetched.values()
                    for r in batch
                ]
                if records:
                    await self._apply_with_retry(records)
                self._record_lag()
        finally:
            await self._consumer.stop()

    async def _apply_with_retry(self, records: list[LogRecord]) -> None:
        """A database outage pauses the projector; it resumes with the same batch, which is safe to repeat."""
        started = time.perf_counter()
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((psycopg.OperationalError, psycopg.InterfaceError)),
            wait=wait_exponential(multiplier=0.2, max=5.0) + wait_random(0, 0.2),
            before_sleep=self._log_retry,
            reraise=True,
        ):
            with attempt:
                outcome = await self._projector.apply(records)
        BATCH_SIZE.observe(len(records))
        BATCH_SECONDS.observe(time.perf_counter() - started)
        if outcome.applied:
            log.debug("batch applied", applied=outcome.applied, duplicates=outcome.skipped_duplicates)

    @staticmethod
    def _log_retry(state: Any) -> None:
        STORE_RETRIES.inc()
        log.warning(
            "read model unavailable, retrying batch",
            attempt=state.attempt_number,
            error=repr(state.outcome.exception())[:300],
        )

    def _record_lag(self) -> None:
        for tp in self._consumer.assignment():
            checkpoint = self._projector.checkpoint(tp.topic, tp.partition)
            highwater = self._consumer.highwater(tp)
            if checkpoint is not None:
                CHECKPOINT.labels(tp.topic, str(tp.partition)).set(checkpoint)
            if highwater is not None:
                LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - (checkpoint or 0), 0))
