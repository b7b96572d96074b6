"""Retries whose attempt already has an outcome in the log are not run again when their partition changes hands.

The same rule as for requests (``finished_requests``), for the retries topic. A retry record names a job and the
attempt to run; that attempt's outcome (completed, failed, dead-lettered, cancelled, or another retry scheduled) is
a job event with the attempt in its payload. At assignment the retry partition's uncommitted tail gives the jobs
waiting there and the earliest moment one was scheduled; the job events from that moment on give the attempts that
already ended. Only those records' payloads are decoded.
"""

from collections.abc import Mapping
from datetime import UTC, datetime

from kernel.log_reader import LogReader, Offsets
from kernel.logging import get_logger
from kernel.settings import Settings
from processors.finished_requests import MAX_TAIL, OUTCOMES, FinishedRequests
from schemas.codec import EVENT_TYPE_HEADER, UndecodableEvent, decode, header
from schemas.events import JobDeadLettered

log = get_logger(__name__)
# The outcome of a retry is stamped by the worker that ran it, the retry by the one that scheduled it: the job
# events are read from this long before the earliest retry, so that clocks apart by less still find the outcome.
CLOCK_SKEW_MS = 60_000


def retry_key(job_key: bytes, attempt: int) -> bytes:
    return job_key + b":" + str(attempt).encode()


class FinishedRetries(FinishedRequests):
    """Remembers, per retry partition, ``retry_key(job, attempt)`` of the attempts whose outcome is in the log."""

    async def _learn(self, settings: Settings, group: str, partitions: list[int]) -> int:
        if not partitions:
            return 0
        for partition in partitions:
            self.by_partition[partition] = set()
        async with LogReader(settings, settings.retries_topic) as retries:
            starts, ends = await retries.uncommitted(group, partitions, MAX_TAIL)
            waiting: dict[bytes, int] = {}  # job key -> its retry partition
            since_ms: int | None = None
            async for batch in retries.read(starts, ends):
                for record in batch:
                    if record.key is not None:
                        waiting[record.key] = record.partition
                        since_ms = record.timestamp_ms if since_ms is None else min(since_ms, record.timestamp_ms)
            retry_partitions = len(await retries.partitions())
        if since_ms is None:
            return 0
        found = 0
        async with LogReader(settings, settings.job_events_topic) as events:
            since = datetime.fromtimestamp((since_ms - CLOCK_SKEW_MS) / 1000, UTC)
            begin, end = await events.offsets_for_time(since), await events.end_offsets()
            if len(end) == retry_partitions:
                # Both topics are keyed by job id with the same partitioner: a job's events share its retries'
                # partition number, and the other partitions need not be read.
                begin = {p: begin[p] for p in partitions if p in begin}
            if _length(begin, end) > MAX_TAIL:
                log.warning("the job events after the waiting retries are too many to read; they may run again",
                            records=_length(begin, end))  # fmt: skip
                return 0
            async for batch in events.read(begin, end):
                for record in batch:
                    if record.key not in waiting or header(record.headers, EVENT_TYPE_HEADER) not in OUTCOMES:
                        continue
                    attempt = _attempt(record.value)
                    if attempt is not None and record.key is not None:
                        self.by_partition[waiting[record.key]].add(retry_key(record.key, attempt))
                        found += 1
        log.info("finished retries learnt at assignment", partitions=partitions, waiting=len(waiting), finished=found)
        return found


def _length(begin: Offsets, end: Mapping[int, int]) -> int:
    return sum(end[p] - o for p, o in begin.items())


def _attempt(value: bytes | None) -> int | None:
    """The attempt an outcome ends (None for a record no worker can read: its attempt may run again)."""
    try:
        event = decode(value)
    except UndecodableEvent:
        return None
    if isinstance(event, JobDeadLettered):
        return event.payload.attempts
    attempt = getattr(event.payload, "attempt", None)
    return attempt if isinstance(attempt, int) else None
