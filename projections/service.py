"""The projector as a handler of the consumer loop: it reads each partition from its checkpoint in Postgres, applies
batches in one transaction each, and retries the store through an outage. It commits nothing to Kafka: the
checkpoints, written with the rows, are the only positions that count."""

import time
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential, wait_random

from kernel.consumer_loop import Batch, Commits, ConsumerLoop, Positions
from kernel.logging import get_logger
from projections.metrics import BATCH_SECONDS, BATCH_SIZE, CHECKPOINT, LAG, STORE_RETRIES
from projections.projector import Projector

log = get_logger(__name__)


class ProjectorHandler:
    def __init__(self, projector: Projector, topic: str) -> None:
        self._projector = projector
        self._topic = topic

    async def assigned(self, partitions: list[int]) -> Positions:
        stored = await self._projector.load_checkpoints(self._topic)
        log.info("checkpoints loaded", checkpoints={p: stored.get(p, 0) for p in partitions})
        return {partition: stored.get(partition) for partition in partitions}

    async def revoked(self, partitions: list[int]) -> None:
        return None  # every batch is committed before the next poll, so there is nothing to flush

    async def rewind(self, partitions: list[int]) -> Positions:
        return await self.assigned(partitions)

    async def handle(self, batch: Batch) -> Commits:
        """A database outage pauses the projector; it resumes with the same batch, which is safe to repeat."""
        records = batch.records()
        started = time.perf_counter()
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((psycopg.OperationalError, psycopg.InterfaceError)),
            wait=wait_exponential(multiplier=0.2, max=5.0) + wait_random(0, 0.2),
            before_sleep=_log_retry,
            reraise=True,
        ):
            with attempt:
                outcome = await self._projector.apply(records)
        BATCH_SIZE.observe(len(records))
        BATCH_SECONDS.observe(time.perf_counter() - started)
        if outcome.applied:
            log.debug("batch applied", applied=outcome.applied, duplicates=outcome.skipped_duplicates)
        return {}

    def record_lag(self, loop: ConsumerLoop) -> None:
        for partition, highwater in loop.highwaters().items():
            checkpoint = self._projector.checkpoint(self._topic, partition)
            if checkpoint is not None:
                CHECKPOINT.labels(self._topic, str(partition)).set(checkpoint)
            LAG.labels(self._topic, str(partition)).set(max(highwater - (checkpoint or 0), 0))


def _log_retry(state: Any) -> None:
    STORE_RETRIES.inc()
    log.warning(
        "read model unavailable, retrying batch",
        attempt=state.attempt_number,
        error=repr(state.outcome.exception())[:300],
    )


def projector_loop(consumer: AIOKafkaConsumer, projector: Projector, topic: str, batch_size: int) -> ConsumerLoop:
    handler = ProjectorHandler(projector, topic)
    return ConsumerLoop("projector", consumer, topic, handler, max_records=batch_size, after_poll=handler.record_lag)
