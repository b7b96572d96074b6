"""Requests whose outcome is already in the log are not run again when their partition changes hands.

A worker acknowledges a request after its outcome is appended, and Faust commits acknowledgements every second
(and, here, at a revocation). A job that finishes while its partition is being handed over has its outcome in the
log but its offset not committed: the partition's next owner reads the request again. When a partition is
assigned, its tail after the committed offset is read (keys and headers only, no decoding) and the jobs that
already have an outcome are remembered; their requests are then acknowledged without running. The set spans only
that tail, so it stays small.

Faust may hand a new partition's first records to the agent before its assignment signal has finished (seen: jobs
started 20 ms before the tail was read, and ran twice), so a slot asks ``verdict``, which waits until the record's
partition has been read.

A sweep whose plan is the last thing its request led to is ``planned``, not finished: the planner appends the plan
before it queues the chunks, and one killed in between (seen in CI: the last 16 of 142 chunks never queued) left a
sweep that waited for ever. Its request is not planned again (one plan per attempt); the chunks whose results the
tail does not hold are queued again instead (``recorded_chunks``, ``SweepPlanner.requeue``).
"""

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

from kernel.log_reader import LogReader
from kernel.logging import get_logger
from kernel.settings import Settings
from schemas.codec import UndecodableEvent, decode, event_type_of
from schemas.events import (
    JobCancelled,
    JobCompleted,
    JobDeadLettered,
    JobFailed,
    JobRetryScheduled,
    SweepDispatched,
    SweepPlanned,
    SweepResultsRecorded,
)

log = get_logger(__name__)
# What ends a job for good: its one outcome.
JOB_ENDS = frozenset(t.TYPE for t in (JobCompleted, JobFailed, JobDeadLettered, JobCancelled))
# What ends an attempt on the worker that ran it: a scheduled retry runs from the retries topic, and a sweep's
# planned chunks, or its dispatch to an external service, go on elsewhere; running the attempt again would plan or
# dispatch the sweep twice.
ATTEMPT_ENDS = JOB_ENDS | {t.TYPE for t in (JobRetryScheduled, SweepPlanned, SweepDispatched)}
# A tail longer than this (a partition committed long ago, or never, with a long history) is not read: its jobs
# may run again, as at-least-once allows.
MAX_TAIL = 200_000


# How long a slot waits for its partition's tail to be read before it runs the job anyway (at least once).
LEARN_PATIENCE_SECONDS = 60.0

Verdict = Literal["run", "finished", "revoked", "planned"]
# How many jobs this worker remembers having finished itself, whatever partitions it holds now.
RAN_HERE = 100_000


@dataclass
class FinishedRequests:
    by_partition: dict[int, set[bytes]] = field(default_factory=dict)
    # Per partition: sweeps whose last attempt end in the tail is their plan, and the chunks with results since.
    plans: dict[int, dict[bytes, set[int]]] = field(default_factory=dict)
    # A partition's gate is open once its tail has been read (or could not be); a record of a partition with no
    # gate yet waits for one.
    _gates: dict[int, asyncio.Event] = field(default_factory=dict)
    _assigned: set[int] = field(default_factory=set)
    # Jobs whose attempt ended here, its outcome acknowledged by the log: a request read again after its partition
    # came back (the commit was behind) is not run again even if the tail read at the assignment missed its outcome
    # (seen once in the chaos loop: a job finished during the revocation ran again 0.7 s later on the same worker).
    _ran_here: "OrderedDict[bytes, None]" = field(default_factory=OrderedDict)

    async def verdict(self, partition: int, job_key: bytes | None) -> Verdict:
        """Whether a slot runs this request: not when the log holds its outcome, nor when its partition has gone to
        another worker while the slot waited (the new owner runs it)."""
        gate = self._gates.setdefault(partition, asyncio.Event())
        if not gate.is_set():
            try:
                await asyncio.wait_for(gate.wait(), LEARN_PATIENCE_SECONDS)
            except TimeoutError:
                log.warning("a partition's finished jobs were not learnt in time; running its job", partition=partition)
                return "run"
        if partition not in self._assigned:
            return "revoked"
        if job_key is not None and job_key in self.plans.get(partition, {}):
            return "planned"
        return "finished" if self.has_outcome(partition, job_key) else "run"

    def recorded_chunks(self, partition: int, job_key: bytes) -> set[int]:
        """The chunks of a ``planned`` sweep whose results the tail holds."""
        return self.plans.get(partition, {}).get(job_key, set())

    def tenure(self, partition: int) -> object | None:
        """A token of this worker's current hold on ``partition`` (None without one): a record that waits, as a
        retry does until it is due, runs only if ``still_holds`` says the hold it started under lasts."""
        return self._gates.get(partition) if partition in self._assigned else None

    def still_holds(self, partition: int, tenure: object | None) -> bool:
        return tenure is not None and self.tenure(partition) is tenure

    def has_outcome(self, partition: int, job_key: bytes | None) -> bool:
        return job_key is not None and (job_key in self._ran_here or job_key in self.by_partition.get(partition, set()))

    def ended_here(self, job_key: bytes | None) -> None:
        """The attempt of this request that ran here has ended, and its outcome is in the log."""
        if job_key is None:
            return
        self._ran_here[job_key] = None
        self._ran_here.move_to_end(job_key)
        while len(self._ran_here) > RAN_HERE:
            self._ran_here.popitem(last=False)

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.by_partition.pop(partition, None)
            self.plans.pop(partition, None)
            self._assigned.discard(partition)
            gate = self._gates.pop(partition, None)
            if gate is not None:
                gate.set()  # a slot waiting on it learns that the partition is gone

    def opened(self, partitions: list[int]) -> None:
        """The partitions are assigned and their tails read (or given up on): their slots go on."""
        self._assigned.update(partitions)
        for partition in partitions:
            self._gates.setdefault(partition, asyncio.Event()).set()

    async def learn(self, settings: Settings, group: str, partitions: list[int]) -> int:
        """Reads each partition from the group's committed offset to its end; how many finished jobs it found.
        The partitions' gates open when it returns or fails."""
        try:
            return await self._learn(settings, group, partitions)
        finally:
            self.opened(partitions)

    async def _learn(self, settings: Settings, group: str, partitions: list[int]) -> int:
        if not partitions:
            return 0
        async with LogReader(settings, settings.job_events_topic) as reader:
            # Never committed: read from the beginning, like the worker. (A fault test caught it: every job behind a
            # long first job ran twice.)
            starts, ends = await reader.uncommitted(group, partitions, MAX_TAIL)
            found = 0
            for partition in partitions:
                self.by_partition[partition] = set()
                self.plans[partition] = {}
            async for batch in reader.read(starts, ends):
                for record in batch:
                    event_type = event_type_of(record.headers)
                    if record.key is None:
                        continue
                    plans = self.plans[record.partition]
                    if event_type in ATTEMPT_ENDS:
                        self.by_partition[record.partition].add(record.key)
                        found += 1
                        if event_type == SweepPlanned.TYPE:
                            plans[record.key] = set()
                        else:
                            plans.pop(record.key, None)
                    elif event_type == SweepResultsRecorded.TYPE and record.key in plans:
                        index = _chunk_index(record.value)
                        if index is not None:
                            plans[record.key].add(index)
        log.info(
            "finished jobs learnt at assignment",
            partitions=partitions,
            finished=found,
            tail=sum(ends[p] - starts[p] for p in starts),
        )
        return found


def _chunk_index(value: bytes | None) -> int | None:
    try:
        event = decode(value)
    except UndecodableEvent:
        return None  # its chunk is queued again; its results fold once
    return event.payload.chunk_index if isinstance(event, SweepResultsRecorded) else None
