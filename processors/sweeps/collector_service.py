"""The sweep collector: folds each running sweep's events from the log and completes the sweep at its last chunk.

Its state is never stored anywhere but the log itself. The collector's consumer group commits, per partition,
no further than the plan of the oldest sweep still running there; a collector that restarts, or takes over a
partition from another worker, reads those sweeps' events again and arrives at the same state. Everything it
appends has an id derived from the job (progress n, completion), so doing a step twice appends the same facts.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from kernel.consumer_loop import Batch, Commits, ConsumerLoop, Positions
from kernel.log_reader import LogReader, LogRecord
from kernel.logging import get_logger
from kernel.settings import Settings
from processors.finished_requests import JOB_ENDS, MAX_TAIL
from processors.metrics import SWEEP_STEPS_SKIPPED
from processors.sweeps.collector import State, add_results, dispatched_state, keep_per_cell, planned_state
from schemas.codec import UndecodableEvent, decode, event_type_of
from schemas.events import (
    Event,
    JobCancelled,
    JobCancelRequested,
    JobCompleted,
    JobFailed,
    SweepCallbackReceived,
    SweepDispatched,
    SweepPlanned,
    SweepResultsRecorded,
)

log = get_logger(__name__)

COLLECTED_TYPES = frozenset(
    {
        SweepPlanned.TYPE,
        SweepDispatched.TYPE,
        SweepResultsRecorded.TYPE,
        SweepCallbackReceived.TYPE,
        JobCompleted.TYPE,
        JobFailed.TYPE,
        JobCancelRequested.TYPE,
        JobCancelled.TYPE,
    }
)
CollectorStep = Callable[[SweepResultsRecorded, State], Awaitable[None]]
CallbackStep = Callable[[SweepCallbackReceived, State], Awaitable[None]]
CancelStep = Callable[[JobCancelRequested, State], Awaitable[None]]
# How long a rebalance waits for the event being applied (a sweep's finish writes its summary: seconds).
REVOKE_PATIENCE_SECONDS = 30.0
# Per assigned partition: the sweeps that ended after where the collector reads from, and where they ended.
EndedAhead = Callable[[list[int]], Awaitable[dict[int, dict[uuid.UUID, int]]]]


@dataclass
class _Running:
    state: State
    planned_at_offset: int


@dataclass
class _Partition:
    running: dict[uuid.UUID, _Running] = field(default_factory=dict)
    # Sweeps that ended in the part of the log read again after a crash or handover, and the offset of their end:
    # their plans, read again, are not followed (a sweep finished just before the crash would finish twice).
    ended: dict[uuid.UUID, int] = field(default_factory=dict)


class SweepCollector:
    """The fold, without Kafka: events in log order per partition, and where it is safe to commit."""

    def __init__(
        self, report: CollectorStep, finish: CollectorStep, relay: CallbackStep, cancel: CancelStep, top_cells: int
    ) -> None:
        self._cancel = cancel
        self._relay = relay
        self._report = report
        self._finish = finish
        self._top_cells = top_cells
        self._partitions: dict[int, _Partition] = {}

    def running(self, partition: int) -> int:
        return len(self._partitions.get(partition, _Partition()).running)

    def ended_ahead(self, partition: int, ended: dict[uuid.UUID, int]) -> None:
        """The sweeps whose end (at the given offsets) is already in the log ahead of where this partition is read
        from: plans before their ends are not followed, so nothing they did is done again."""
        self._partitions.setdefault(partition, _Partition()).ended.update(ended)

    async def apply(self, partition: int, offset: int, event: Event) -> None:
        state = self._partitions.setdefault(partition, _Partition())
        running = state.running
        if isinstance(event, SweepPlanned | SweepDispatched):
            if event.job_id in running:
                return
            if state.ended.get(event.job_id, -1) > offset:
                SWEEP_STEPS_SKIPPED.inc()
                log.info("sweep ended already; its plan is not followed again", job_id=str(event.job_id))
                return
            initial = planned_state(event) if isinstance(event, SweepPlanned) else dispatched_state(event)
            running[event.job_id] = _Running(initial, offset)
        elif isinstance(event, SweepCallbackReceived):
            sweep = running.get(event.job_id)
            # The receiver checked the reference; a callback for a sweep that has ended changes nothing.
            if sweep is not None and sweep.state.get("external_reference") == event.payload.external_reference:
                await self._relay(event, sweep.state)
        elif isinstance(event, JobCancelRequested):
            sweep = running.pop(event.job_id, None)
            if sweep is not None:  # stops at this chunk boundary: later chunks' results change nothing
                await self._cancel(event, sweep.state)
        elif isinstance(event, JobCompleted | JobFailed | JobCancelled):
            running.pop(event.job_id, None)  # ended, by us or by a failed chunk
        elif isinstance(event, SweepResultsRecorded):
            sweep = running.get(event.job_id)
            if sweep is None:
                return  # a late or duplicate chunk of a sweep that has ended
            collected = add_results(sweep.state, event, keep_per_cell(sweep.state["parameters"], self._top_cells))
            if not collected.new:
                return
            sweep.state = collected.state
            await self._report(event, collected.state)
            if collected.complete:
                await self._finish(event, collected.state)
                running.pop(event.job_id, None)

    def commit_offset(self, partition: int, next_offset: int) -> int:
        """The offset to commit: before the plan of the oldest running sweep, or everything read so far."""
        running = self._partitions.get(partition, _Partition()).running
        return min((sweep.planned_at_offset for sweep in running.values()), default=next_offset)

    def forget(self, partitions: set[int], keep_ended: bool = False) -> None:
        """Drops the partitions' folds; ``keep_ended`` keeps what the assignment learnt of sweeps ended ahead (a
        re-read from the commits, not a new owner)."""
        for partition in partitions:
            dropped = self._partitions.pop(partition, None)
            if keep_ended and dropped is not None:
                self._partitions[partition] = _Partition(ended=dropped.ended)


class CollectorHandler:
    """The collector as a handler of the consumer loop: its fold is rebuilt from the group's commits, which it keeps
    behind the oldest running sweep of each partition."""

    def __init__(self, collector: SweepCollector, ended_ahead: "EndedAhead | None") -> None:
        self._collector = collector
        self._ended_ahead = ended_ahead
        # Held while an event is applied, which may append a sweep's outcome.
        self.applying = asyncio.Lock()

    async def revoked(self, partitions: list[int]) -> None:
        # A sweep being finished now has its outcome in the log before the group moves on, so that the partition's
        # next reader knows it ended (the chaos loop caught a sweep finished twice: once during a rebalance, once
        # after it). Whoever gets these partitions (this worker again, perhaps) rebuilds their sweeps from the
        # committed offsets.
        try:
            async with asyncio.timeout(REVOKE_PATIENCE_SECONDS), self.applying:
                pass
        except TimeoutError:
            log.warning("a sweep step outlasted the rebalance; the sweep may finish twice")
        self._collector.forget(set(partitions))

    async def assigned(self, partitions: list[int]) -> Positions:
        try:
            if self._ended_ahead is not None and partitions:
                for partition, ended in (await self._ended_ahead(partitions)).items():
                    self._collector.ended_ahead(partition, ended)
        except Exception as exc:  # without it a sweep finished just before a crash may be finished twice
            log.warning("could not read the ended sweeps of assigned partitions", error=repr(exc)[:300])
        return {}

    async def rewind(self, partitions: list[int]) -> Positions:
        """Forget every sweep and read again from the committed offsets: the fold arrives where it was."""
        self._collector.forget(set(partitions), keep_ended=True)
        return {}

    async def handle(self, batch: Batch) -> Commits:
        commits: dict[int, int] = {}
        for partition, records in batch.partitions.items():
            for record in records:
                if not batch.current():
                    # A rebalance while we were busy forgot these partitions' sweeps and sent their positions back
                    # to the commits, even for partitions that stayed ours: applying the rest of this batch to an
                    # empty fold would skip plans and commit past them, losing those sweeps for good.
                    return {}
                async with self.applying:
                    await self._apply(partition, record)
            commits[partition] = self._collector.commit_offset(partition, records[-1].offset + 1)
            # The collector shares the worker's event loop with the job agents, and a batch of a busy job topic is
            # mostly other services' events, applied without a single await: without this, a 1,000-record batch
            # held the job agents up for its whole length, and a worker ran 0.9x the noop jobs per second it ran
            # when the collector committed (and so yielded) partition by partition (`zixly bench worker`).
            await asyncio.sleep(0)
        return commits

    async def _apply(self, partition: int, record: LogRecord) -> None:
        if event_type_of(record.headers) not in COLLECTED_TYPES or record.value is None:
            return
        try:
            event = decode(record.value)
        except UndecodableEvent:
            return  # the job agent reports undecodable records
        await self._collector.apply(partition, record.offset, event)


def collector_loop(
    consumer: AIOKafkaConsumer, collector: SweepCollector, topic: str, ended_ahead: "EndedAhead | None" = None
) -> ConsumerLoop:
    # A failed step must not take the worker's other agents down: the batch is read again from the commits.
    return ConsumerLoop(
        "sweep-collector",
        consumer,
        topic,
        CollectorHandler(collector, ended_ahead),
        max_records=1000,
        settle_patience=REVOKE_PATIENCE_SECONDS,
        retry_failed_batches=True,
    )


async def read_ended_ahead(settings: Settings, group: str, partitions: list[int]) -> dict[int, dict[uuid.UUID, int]]:
    """The job ends in each partition's tail after ``group``'s committed offset (keys and headers only)."""
    ended: dict[int, dict[uuid.UUID, int]] = {partition: {} for partition in partitions}
    async with LogReader(settings, settings.job_events_topic) as reader:
        starts, ends = await reader.uncommitted(group, partitions, MAX_TAIL)
        async for batch in reader.read(starts, ends):
            for record in batch:
                if record.key is None or event_type_of(record.headers) not in JOB_ENDS:
                    continue
                try:
                    ended[record.partition][uuid.UUID(record.key.decode())] = record.offset
                except ValueError:
                    continue  # not a job's key: the job agent reports such records
    return ended
