"""Where the projector keeps its rows and its position: a unit of work that commits both or neither."""

import uuid
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import NamedTuple, Protocol

from projections.sweep_results import ResultRow
from read_model.job_state import JobRow
from schemas.events import Event


class EventRow(NamedTuple):
    """A ``job_events`` row: the event and where it was found in the log (a named tuple, cheap by the million)."""

    event: Event
    partition: int
    offset: int


class ProjectionUnitOfWork(Protocol):
    async def load_jobs(self, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, JobRow]: ...

    async def write(
        self,
        events: list[EventRow],
        jobs: list[JobRow],
        checkpoints: Mapping[tuple[str, int], int],
        sweep_results: list[ResultRow] | None = None,
        event_times: Mapping[tuple[str, int], datetime] | None = None,
    ) -> None:
        """``event_times``: per partition, when the latest event applied from it occurred (for freshness)."""
        ...


class ProjectionStore(Protocol):
    async def load_checkpoints(self, topic: str) -> dict[int, int]:
        """Partition → the next offset to apply."""
        ...

    def unit_of_work(self) -> AbstractAsyncContextManager[ProjectionUnitOfWork]: ...
