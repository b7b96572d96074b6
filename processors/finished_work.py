"""Work on topics of its own (retries, sweep chunks) whose outcome already is in the log is not done again when its
partition changes hands.

The same rule as for requests (``finished_requests``), for work whose outcome is a job event on another topic. At
assignment a work partition's uncommitted tail gives the jobs waiting there and the earliest moment one was
written; the job events from that moment on give what already ended. Only the outcomes of those jobs are decoded.

- A retry names a job and the attempt to run: it is done when that attempt ended (completed, failed, dead-lettered,
  cancelled, another retry scheduled, or the sweep planned or dispatched).
- A sweep chunk is done when its results are recorded, or when its sweep has ended (a failed chunk fails the sweep;
  the chunks left are of no use).
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from kernel.log_reader import LogReader, LogRecord, Offsets
from kernel.logging import get_logger
from kernel.settings import Settings
from processors.finished_requests import ATTEMPT_ENDS, JOB_ENDS, MAX_TAIL, FinishedRequests, Verdict
from schemas.codec import UndecodableEvent, decode, event_type_of
from schemas.events import Event, JobDeadLettered, SweepResultsRecorded
from schemas.sweeps import chunk_record_key

log = get_logger(__name__)
# The outcome is stamped by the worker that did the work, the work item by the one that wrote it: the job events
# are read from this long before the earliest item, so that clocks apart by less still find the outcome.
CLOCK_SKEW_MS = 60_000


class FinishedWork(FinishedRequests):
    """Remembers, per work partition, the keys (``done_keys``) of the work whose outcome is in the log."""

    name = "work"
    # Whether a work item's partition number is its job's partition number on the job-event topic (both keyed by
    # job id, with the same partitioner and as many partitions): then only those partitions are read.
    keyed_by_job = False
    event_types: frozenset[str] = frozenset()

    def topic(self, settings: Settings) -> str:
        raise NotImplementedError

    def job_of(self, work_key: bytes) -> bytes:
        return work_key

    def done_keys(self, job_key: bytes, event: Event) -> Iterable[bytes]:
        """What an outcome of a job waiting here says is done (keys as ``verdict`` is asked about)."""
        raise NotImplementedError

    async def _learn(self, settings: Settings, group: str, partitions: list[int]) -> int:
        if not partitions:
            return 0
        for partition in partitions:
            self.by_partition[partition] = set()
        async with LogReader(settings, self.topic(settings)) as work:
            starts, ends = await work.uncommitted(group, partitions, MAX_TAIL)
            waiting: dict[bytes, int] = {}  # job key -> the work partition it waits on
            since_ms: int | None = None
            async for batch in work.read(starts, ends):
                for record in batch:
                    if record.key is not None:
                        waiting[self.job_of(record.key)] = record.partition
                        since_ms = record.timestamp_ms if since_ms is None else min(since_ms, record.timestamp_ms)
            work_partitions = len(await work.partitions())
        if since_ms is None:
            return 0
        found = 0
        async with LogReader(settings, settings.job_events_topic) as events:
            since = datetime.fromtimestamp((since_ms - CLOCK_SKEW_MS) / 1000, UTC)
            begin, end = await events.offsets_for_time(since), await events.end_offsets()
            if self.keyed_by_job and len(end) == work_partitions:
                begin = {p: begin[p] for p in partitions if p in begin}
            if _length(begin, end) > MAX_TAIL:
                log.warning(
                    f"the job events after the waiting {self.name} are too many to read; they may run again",
                    records=_length(begin, end),
                )
                return 0
            async for batch in events.read(begin, end):
                for record in batch:
                    event = self._outcome(record, waiting)
                    if event is not None and record.key is not None:
                        for key in self.done_keys(record.key, event):
                            self.by_partition[waiting[record.key]].add(key)
                            found += 1
        log.info(
            f"finished {self.name} learnt at assignment", partitions=partitions, waiting=len(waiting), finished=found
        )
        return found

    def _outcome(self, record: LogRecord, waiting: Mapping[bytes, int]) -> Event | None:
        if record.key not in waiting or event_type_of(record.headers) not in self.event_types:
            return None
        try:
            return decode(record.value)
        except UndecodableEvent:
            return None  # no worker can read it: the work it ends may run again


class FinishedRetries(FinishedWork):
    """Keys: ``retry_key(job, attempt)``."""

    name = "retries"
    keyed_by_job = True
    event_types = ATTEMPT_ENDS

    def topic(self, settings: Settings) -> str:
        return settings.retries_topic

    def done_keys(self, job_key: bytes, event: Event) -> Iterable[bytes]:
        attempt = attempt_ended(event)
        return [retry_key(job_key, attempt)] if attempt is not None else []


class FinishedChunks(FinishedWork):
    """Keys: the chunk's own record key (``<job>:<index>``) once its results are recorded, and the job's id once its
    sweep has ended (``chunk_done`` asks both)."""

    name = "sweep chunks"
    event_types = JOB_ENDS | {SweepResultsRecorded.TYPE}

    def topic(self, settings: Settings) -> str:
        return settings.sweep_chunks_topic

    def job_of(self, work_key: bytes) -> bytes:
        return work_key.partition(b":")[0]

    def done_keys(self, job_key: bytes, event: Event) -> Iterable[bytes]:
        if isinstance(event, SweepResultsRecorded):
            return [chunk_record_key(job_key.decode(), event.payload.chunk_index)]
        return [job_key]

    async def chunk_verdict(self, partition: int, work_key: bytes | None) -> Verdict:
        verdict = await self.verdict(partition, work_key)
        if verdict == "run" and work_key is not None and self.has_outcome(partition, self.job_of(work_key)):
            return "finished"
        return verdict


def retry_key(job_key: bytes, attempt: int) -> bytes:
    return job_key + b":" + str(attempt).encode()


def attempt_ended(event: Event) -> int | None:
    if isinstance(event, JobDeadLettered):
        return event.payload.attempts
    attempt = getattr(event.payload, "attempt", None)
    return attempt if isinstance(attempt, int) else None


def _length(begin: Offsets, end: Mapping[int, int]) -> int:
    return sum(end[p] - o for p, o in begin.items())
