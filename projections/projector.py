"""Applying a batch of log records to the read model, exactly once in effect.

Records below the stored checkpoint were applied already and are dropped; the rest are folded and written with
the new checkpoints in one transaction. Replaying any batch therefore changes nothing.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kernel.log_reader import LogRecord
from kernel.logging import get_logger
from projections.metrics import EVENTS_APPLIED, LAST_EVENT_TIME, RECORDS_SKIPPED
from projections.store import EventRow, ProjectionStore
from projections.sweep_results import result_rows
from read_model.job_state import JobRow, already_applied, apply_event
from schemas.codec import UndecodableEvent, decode
from schemas.events import SweepResultsRecorded

log = get_logger(__name__)


@dataclass(frozen=True)
class BatchOutcome:
    applied: int
    skipped_duplicates: int
    skipped_undecodable: int


class Projector:
    def __init__(self, store: ProjectionStore) -> None:
        self._store = store
        self._checkpoints: dict[tuple[str, int], int] = {}

    async def load_checkpoints(self, topic: str) -> dict[int, int]:
        """The stored positions of ``topic``; the caller seeks its consumer there."""
        stored = await self._store.load_checkpoints(topic)
        self._checkpoints.update({(topic, partition): offset for partition, offset in stored.items()})
        return stored

    def checkpoint(self, topic: str, partition: int) -> int | None:
        return self._checkpoints.get((topic, partition))

    async def apply(self, records: Sequence[LogRecord]) -> BatchOutcome:
        fresh = [r for r in records if r.offset >= self._checkpoints.get((r.topic, r.partition), 0)]
        duplicates = len(records) - len(fresh)
        if duplicates:
            RECORDS_SKIPPED.labels("already_applied").inc(duplicates)
        if not fresh:
            return BatchOutcome(0, duplicates, 0)
        fresh.sort(key=lambda r: (r.topic, r.partition, r.offset))
        events: list[EventRow] = []
        undecodable = 0
        for record in fresh:
            try:
                events.append(EventRow(decode(record.value), record.partition, record.offset))
            except UndecodableEvent as exc:
                undecodable += 1
                RECORDS_SKIPPED.labels("undecodable").inc()
                log.error(
                    "skipping undecodable record",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    error=str(exc)[:500],
                )
        checkpoints: dict[tuple[str, int], int] = {}
        topic_of: dict[int, str] = {}
        for record in fresh:
            checkpoints[(record.topic, record.partition)] = record.offset + 1
            topic_of[record.partition] = record.topic

        async with self._store.unit_of_work() as uow:
            rows = await uow.load_jobs({row.event.job_id for row in events})
            changed: dict[uuid.UUID, JobRow] = {}
            new_events: list[EventRow] = []
            ending: set[uuid.UUID] = set()  # jobs not ended before this batch
            for row in events:
                current = rows.get(row.event.job_id)
                if already_applied(current, row.partition, row.offset):
                    duplicates += 1
                    continue
                rows[row.event.job_id] = changed[row.event.job_id] = apply_event(
                    current, row.event, row.partition, row.offset
                )
                if current is None or not current.is_terminal:
                    ending.add(row.event.job_id)
                new_events.append(row)
            sweep_rows = [
                r for row in new_events if isinstance(row.event, SweepResultsRecorded) for r in result_rows(row.event)
            ]
            event_times: dict[tuple[str, int], datetime] = {}
            for row in new_events:
                key = (topic_of[row.partition], row.partition)
                event_times[key] = max(event_times.get(key, row.event.occurred_at), row.event.occurred_at)
            await uow.write(new_events, list(changed.values()), checkpoints, sweep_rows, event_times)

        self._checkpoints.update(checkpoints)
        for job_id in ending:
            job = changed[job_id]
            if job.is_terminal:
                # One line per job's outcome, so that `zixly logs --job` follows a job through the projector too.
                log.info(
                    "job outcome projected",
                    job_id=str(job.id),
                    tenant_id=job.tenant_id,
                    correlation_id=job.correlation_id,
                    status=job.status,
                )
        for row in new_events:
            EVENTS_APPLIED.labels(row.event.event_type).inc()
        if new_events:
            LAST_EVENT_TIME.set(max(row.event.occurred_at for row in new_events).timestamp())
        return BatchOutcome(len(new_events), duplicates, undecodable)
