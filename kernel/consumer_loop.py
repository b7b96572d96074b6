"""The one consumer loop of every service that reads the log in a consumer group: the projector, the sweep
collector and the notifier are its handlers.

The loop owns what they all need and got wrong apart: subscribing, learning an assignment before any of its records
is handled, never handling a batch fetched across a rebalance, committing only while the batch is still ours, and
stopping cleanly. What differs is the handler's: what it learns when partitions arrive, where it reads them from,
and what it commits (Postgres checkpoints commit nothing to Kafka; the collector commits no further than its oldest
running sweep; the notifier commits what it has delivered).
"""

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge, Histogram

from kernel.log_reader import LogRecord
from kernel.logging import get_logger

log = get_logger(__name__)

# Partition → where to read it from: an offset, or None for the beginning. A partition left out is read from the
# group's committed offset (or, with none, from the beginning).
Positions = Mapping[int, int | None]
# Partition → the next offset the group has done with.
Commits = Mapping[int, int]

BATCHES = Histogram(
    "zixly_consumer_batch_seconds",
    "Time a consumer's handler took for one fetched batch",
    ["consumer"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECORDS = Counter("zixly_consumer_records_total", "Records handed to a consumer's handler", ["consumer"])
REBALANCES = Counter("zixly_consumer_rebalances_total", "Assignments a consumer has learnt", ["consumer"])
REWINDS = Counter(
    "zixly_consumer_rewinds_total", "Batches dropped and read again (a rebalance or a failed batch)", ["consumer"]
)
LAG = Gauge("zixly_consumer_lag", "Log end offset minus the consumer's position", ["consumer", "partition"])


@dataclass(frozen=True)
class Batch:
    """Records fetched together, per partition in log order."""

    partitions: Mapping[int, list[LogRecord]]
    current: Callable[[], bool]  # False once a rebalance has begun since the batch was fetched

    def records(self) -> list[LogRecord]:
        return [record for records in self.partitions.values() for record in records]

    def ends(self) -> dict[int, int]:
        """Per partition, the offset after the batch's last record: what to commit once all of it is done."""
        return {partition: records[-1].offset + 1 for partition, records in self.partitions.items() if records}


class BatchHandler(Protocol):
    async def assigned(self, partitions: list[int]) -> Positions:
        """Learns what newly assigned partitions need; returns where to read them from. No record of theirs is
        handled before it returns."""
        ...

    async def revoked(self, partitions: list[int]) -> None:
        """The partitions go to whoever the group gives them; the batch being handled may still be running."""
        ...

    async def rewind(self, partitions: list[int]) -> Positions:
        """A batch was dropped (fetched across a rebalance, or it failed): forget what it did, say where to read
        from again."""
        ...

    async def handle(self, batch: Batch) -> Commits:
        """Does the batch's work; returns what the group may commit."""
        ...


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka's base is untyped
    """Counts rebalances, so a batch fetched before one is never handled after it, and says when an assignment has
    been learnt: aiokafka may hand out a new partition's records before its listener has returned (seen: a
    notification delivered again 90 ms before the tail was read; a sweep finished twice)."""

    def __init__(self, loop: "ConsumerLoop") -> None:
        self._loop = loop
        self.generation = 0
        self.settled = asyncio.Event()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.generation += 1
        self.settled.clear()
        await self._loop.handler.revoked(sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.generation += 1
        self.settled.clear()
        partitions = sorted(tp.partition for tp in assigned)
        REBALANCES.labels(self._loop.name).inc()
        try:
            await self._loop.seek(await self._loop.handler.assigned(partitions), others_to_commits=False)
        finally:
            self.settled.set()
        log.info("partitions assigned", consumer=self._loop.name, partitions=partitions)


class ConsumerLoop:
    def __init__(
        self,
        name: str,
        consumer: AIOKafkaConsumer,
        topic: str,
        handler: BatchHandler,
        *,
        max_records: int,
        settle_patience: float = 30.0,
        retry_failed_batches: bool = False,
        retry_after: float = 1.0,
        poll_ms: int = 500,
        after_poll: Callable[["ConsumerLoop"], None] | None = None,
    ) -> None:
        """``retry_failed_batches``: a failed batch is logged, rewound and read again ``retry_after`` seconds later,
        rather than ending the loop (the collector shares a worker with agents a failure must not take down).
        ``after_poll`` runs after every fetch, records or none (a service's own gauges)."""
        self.name = name
        self.handler = handler
        self._consumer = consumer
        self._topic = topic
        self._max_records = max_records
        self._settle_patience = settle_patience
        self._retry = retry_failed_batches
        self._retry_after = retry_after
        self._poll_ms = poll_ms
        self._after_poll = after_poll
        self._listener = _Listener(self)
        self._stopping = asyncio.Event()
        self._handled: dict[int, int] = {}  # per partition, the offset after the last record handled

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        self._consumer.subscribe([self._topic], listener=self._listener)
        await self._consumer.start()
        try:
            while not self._stopping.is_set():
                try:
                    await self._step()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not self._retry:
                        raise
                    log.warning(
                        "batch failed; reading again from where the handler says",
                        consumer=self.name,
                        error_type=type(exc).__name__,
                        error=str(exc)[:500],
                    )
                    await asyncio.sleep(self._retry_after)
                    await self._rewind()
        finally:
            await self._consumer.stop()

    def highwaters(self) -> dict[int, int]:
        """Per assigned partition, the log end offset last seen by a fetch."""
        marks = {tp.partition: self._consumer.highwater(tp) for tp in self._consumer.assignment()}
        return {partition: mark for partition, mark in marks.items() if mark is not None}

    async def seek(self, positions: Positions, others_to_commits: bool = True) -> None:
        """Reads the named partitions from the given positions, and (``others_to_commits``) every other assigned
        partition from the group's commit; a fresh assignment does that by itself."""
        self._handled.clear()
        for partition, offset in positions.items():
            tp = TopicPartition(self._topic, partition)
            if offset is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)
        if not others_to_commits:
            return
        for tp in [tp for tp in self._consumer.assignment() if tp.partition not in positions]:
            try:
                committed = await self._consumer.committed(tp)
            except KafkaError as exc:
                log.warning("cannot read the committed offset yet", partition=tp.partition, error=repr(exc)[:200])
                continue
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)

    async def _rewind(self) -> None:
        REWINDS.labels(self.name).inc()
        await self.seek(await self.handler.rewind(sorted(tp.partition for tp in self._consumer.assignment())))

    async def _step(self) -> None:
        generation = self._listener.generation
        fetched = await self._consumer.getmany(timeout_ms=self._poll_ms, max_records=self._max_records)
        if self._after_poll is not None:
            self._after_poll(self)
        if not fetched:
            return
        try:
            await asyncio.wait_for(self._listener.settled.wait(), self._settle_patience)
        except TimeoutError:
            log.warning("an assignment is still being learnt; reading its partitions again", consumer=self.name)
            await self._rewind()
            return
        if self._listener.generation != generation:
            # Fetched from positions a rebalance has since reset: handled now, the batch would skip what the new
            # assignment reads again, or commit past it.
            await self._rewind()
            return
        batch = Batch(
            {
                tp.partition: [
                    LogRecord(r.topic, r.partition, r.offset, r.value, tuple(r.headers or ()), r.key, r.timestamp)
                    for r in records
                ]
                for tp, records in fetched.items()
            },
            lambda: self._listener.generation == generation,
        )
        started = time.perf_counter()
        commits = await self.handler.handle(batch)
        BATCHES.labels(self.name).observe(time.perf_counter() - started)
        RECORDS.labels(self.name).inc(sum(len(records) for records in batch.partitions.values()))
        self._handled.update(batch.ends())
        self._record_lag()
        if commits and batch.current():
            try:
                await self._consumer.commit(
                    {TopicPartition(self._topic, p): OffsetAndMetadata(offset, "") for p, offset in commits.items()}
                )
            except (CommitFailedError, IllegalStateError) as exc:
                log.info("commit skipped after a rebalance", consumer=self.name, error=type(exc).__name__)

    def _record_lag(self) -> None:
        """After each handled batch: between batches neither the handled offsets nor (with nothing fetched) the log
        ends move, so a gauge set on every empty poll set the same values again."""
        for partition, highwater in self.highwaters().items():
            if (handled := self._handled.get(partition)) is not None:
                LAG.labels(self.name, str(partition)).set(max(highwater - handled, 0))
