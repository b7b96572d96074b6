"""The projector's store as plain dicts: for the projector's unit tests, and the reference of its semantics."""

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from projections.store import EventRow, ProjectionUnitOfWork
from projections.sweep_results import KEY, ResultRow
from read_model.job_state import JobRow


class InMemoryProjectionStore:
    """The store as plain dicts: for unit tests of the projector, and as the reference of its semantics."""

    def __init__(self) -> None:
        self.jobs: dict[uuid.UUID, JobRow] = {}
        self.events: dict[uuid.UUID, EventRow] = {}
        self.checkpoints: dict[tuple[str, int], int] = {}
        self.sweep_results: dict[tuple[Any, ...], ResultRow] = {}
        self.commits = 0
        self.fail_next_write: Exception | None = None

    async def load_checkpoints(self, topic: str) -> dict[int, int]:
        return {partition: offset for (t, partition), offset in self.checkpoints.items() if t == topic}

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[ProjectionUnitOfWork]:
        uow = _InMemoryUnitOfWork(self)
        yield uow
        if self.fail_next_write is not None:
            error, self.fail_next_write = self.fail_next_write, None
            raise error
        for row in uow.pending_events:
            self.events.setdefault(row.event.event_id, row)
        self.jobs.update(uow.pending_jobs)
        self.checkpoints.update(uow.pending_checkpoints)
        for result in uow.pending_results:
            self.sweep_results.setdefault(result[KEY], result)  # the table's key: the first row wins
        self.commits += 1


class _InMemoryUnitOfWork:
    def __init__(self, store: InMemoryProjectionStore) -> None:
        self.store = store
        self.pending_events: list[EventRow] = []
        self.pending_jobs: dict[uuid.UUID, JobRow] = {}
        self.pending_checkpoints: dict[tuple[str, int], int] = {}
        self.pending_results: list[ResultRow] = []

    async def load_jobs(self, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, JobRow]:
        return {job_id: self.store.jobs[job_id] for job_id in job_ids if job_id in self.store.jobs}

    async def write(
        self,
        events: list[EventRow],
        jobs: list[JobRow],
        checkpoints: Mapping[tuple[str, int], int],
        sweep_results: list[ResultRow] | None = None,
        event_times: Mapping[tuple[str, int], datetime] | None = None,
    ) -> None:
        self.pending_results.extend(sweep_results or [])
        self.pending_events.extend(events)
        self.pending_jobs.update({job.id: job for job in jobs})
        self.pending_checkpoints.update(checkpoints)
