"""Folding the log into the shadow tables at bulk speed.

The fold is the live projector's own (``apply_event``, ``result_rows``, the same duplicate rules), so a rebuild
equals what the live projector wrote. What differs is the I/O: the whole fold stays in memory, and each segment is
written with COPY straight into the shadow tables, with no per-batch reads and no upserts except for jobs that a
previous segment wrote already.
"""

from collections.abc import Iterable
from typing import Any

from psycopg import sql

from kernel.log_reader import LogRecord
from projections.postgres_store import EVENT_COLUMNS, event_copy_row, job_copy_row
from projections.shadow import SHADOW, Connection, write_positions
from projections.store import EventRow
from projections.sweep_results import COLUMNS as RESULT_COLUMNS
from projections.sweep_results import KEY as RESULT_KEY
from projections.sweep_results import ResultRow, result_rows
from read_model.job_state import COLUMNS as JOB_COLUMNS
from read_model.job_state import JobRow, already_applied, apply_event
from schemas.codec import UndecodableEvent, decode, event_type_of
from schemas.events import SweepResultsRecorded


def _copy(table: str, columns: Iterable[str]) -> sql.Composed:
    return sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(SHADOW), sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


class ShadowWriter:
    def __init__(self, tables: Iterable[str]) -> None:
        self.tables = set(tables)
        self._jobs_wanted = bool(self.tables & {"pipeline_jobs", "job_events"})
        self._results_wanted = "trading_sweep_results" in self.tables
        self.offsets: dict[int, int] = {}
        # Keyed by the ids' 128-bit integers: hashing a UUID runs Python code, five times an event in a replay.
        self.jobs: dict[int, JobRow] = {}
        self._written_jobs: set[int] = set()
        self._changed_jobs: set[int] = set()
        self._event_ids: set[int] = set()
        self._result_keys: set[tuple[Any, ...]] = set()
        self._events: list[EventRow] = []
        self._results: list[ResultRow] = []
        self.applied = 0
        self.undecodable = 0
        self._since_flush = 0

    async def resume(self, connection: Connection, offsets: dict[int, int]) -> None:
        """Picks up these partitions of a shadow that an interrupted replay left: their positions and their fold.

        A job's events all share its partition (the job id is the key), so a partition's fold is whole on its own.
        """
        self.offsets = dict(offsets)
        partitions = list(offsets)
        if "pipeline_jobs" in self.tables:
            cursor = await connection.execute(
                sql.SQL("SELECT {} FROM {}.pipeline_jobs WHERE log_partition = ANY(%s)").format(
                    sql.SQL(", ").join(map(sql.Identifier, JOB_COLUMNS)), sql.Identifier(SHADOW)
                ),
                (partitions,),
            )
            for values in await cursor.fetchall():
                job = JobRow(*values)
                self.jobs[job.id.int] = job
                self._written_jobs.add(job.id.int)
        if "job_events" in self.tables:
            query = sql.SQL("SELECT event_id FROM {}.job_events WHERE log_partition = ANY(%s)")
            cursor = await connection.execute(query.format(sql.Identifier(SHADOW)), (partitions,))
            self._event_ids.update(row[0].int for row in await cursor.fetchall())
        if self._results_wanted:
            # The results table does not say which partition a row came from; keys of other partitions' jobs are
            # harmless here, as this process never sees those jobs' events. The job id is text, as in result_rows.
            keys = (
                "SELECT job_id::text, tenant_id, ticker, strategy_type, fold, parameters_key "
                "FROM {}.trading_sweep_results"
            )
            cursor = await connection.execute(sql.SQL(keys).format(sql.Identifier(SHADOW)))
            self._result_keys.update(tuple(row) for row in await cursor.fetchall())

    def apply(self, records: list[LogRecord]) -> None:
        self._since_flush += len(records)
        for record in records:
            self.offsets[record.partition] = record.offset + 1
            if not self._jobs_wanted and event_type_of(record.headers) != SweepResultsRecorded.TYPE:
                continue
            try:
                event = decode(record.value)
            except UndecodableEvent:
                self.undecodable += 1  # the live projector skips (and reports) these too
                continue
            job_key = event.job_id.int
            current = self.jobs.get(job_key)
            if already_applied(current, record.partition, record.offset):
                continue
            self.applied += 1
            self.jobs[job_key] = apply_event(current, event, record.partition, record.offset)
            if self._jobs_wanted:  # else the results fold only needs to know that this offset was applied to the job
                self._changed_jobs.add(job_key)
                event_key = event.event_id.int
                if event_key not in self._event_ids:
                    self._event_ids.add(event_key)
                    self._events.append(EventRow(event, record.partition, record.offset))
            if self._results_wanted and isinstance(event, SweepResultsRecorded):
                for row in result_rows(event):
                    key = row[RESULT_KEY]
                    if key not in self._result_keys:
                        self._result_keys.add(key)
                        self._results.append(row)

    @property
    def pending(self) -> int:
        """Events folded since the last flush."""
        return self._since_flush

    async def flush(self, connection: Connection) -> None:
        """Writes what was folded since the last flush, and the position, in the caller's transaction."""
        async with connection.cursor() as cursor:
            if "job_events" in self.tables and self._events:
                async with cursor.copy(_copy("job_events", EVENT_COLUMNS)) as copy:
                    for row in self._events:
                        await copy.write_row(event_copy_row(row))
            if "pipeline_jobs" in self.tables and self._changed_jobs:
                new = [job_id for job_id in self._changed_jobs if job_id not in self._written_jobs]
                again = [job_id for job_id in self._changed_jobs if job_id in self._written_jobs]
                async with cursor.copy(_copy("pipeline_jobs", JOB_COLUMNS)) as copy:
                    for job_id in new:
                        await copy.write_row(job_copy_row(self.jobs[job_id]))
                if again:
                    await self._rewrite_jobs(cursor, again)
                self._written_jobs.update(new)
            if self._results_wanted and self._results:
                async with cursor.copy(_copy("trading_sweep_results", RESULT_COLUMNS)) as copy:
                    for result in self._results:
                        await copy.write_row(result)
        await write_positions(connection, self.offsets)
        self._events.clear()
        self._since_flush = 0
        self._changed_jobs.clear()
        self._results.clear()

    async def _rewrite_jobs(self, cursor: Any, job_ids: list[int]) -> None:
        await cursor.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS replay_jobs (LIKE {}.pipeline_jobs) ON COMMIT DELETE ROWS").format(
                sql.Identifier(SHADOW)
            )
        )
        async with cursor.copy(
            sql.SQL("COPY replay_jobs ({}) FROM STDIN").format(sql.SQL(", ").join(map(sql.Identifier, JOB_COLUMNS)))
        ) as copy:
            for job_id in job_ids:
                await copy.write_row(job_copy_row(self.jobs[job_id]))
        await cursor.execute(
            sql.SQL("UPDATE {}.pipeline_jobs AS j SET {} FROM replay_jobs AS r WHERE j.id = r.id").format(
                sql.Identifier(SHADOW),
                sql.SQL(", ").join(
                    sql.SQL("{} = r.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in JOB_COLUMNS if c != "id"
                ),
            )
        )
