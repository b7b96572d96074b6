"""The projection store on Postgres: COPY into staging tables, set-based upserts, checkpoints, one commit.

One round trip per statement per batch, never per event.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from projections import job_stats
from projections.shadow import SWAP_LOCK
from projections.store import EventRow, ProjectionUnitOfWork
from projections.sweep_results import COLUMNS as RESULT_COLUMNS
from projections.sweep_results import ResultRow, timeline_payload
from read_model.job_state import COLUMNS, JobRow

_JSON_COLUMNS = {"parameters", "metadata", "result", "metrics"}
EVENT_COLUMNS = (
    "event_id",
    "job_id",
    "tenant_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "correlation_id",
    "causation_id",
    "producer",
    "payload",
    "log_partition",
    "log_offset",
)

_SETUP = """
CREATE TEMP TABLE IF NOT EXISTS staging_job_events (LIKE job_events) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staging_pipeline_jobs (LIKE pipeline_jobs) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staging_trading_sweep_results (LIKE trading_sweep_results) ON COMMIT DELETE ROWS;
"""

_job_columns = ", ".join(COLUMNS)
_UPSERT_JOBS = f"""
INSERT INTO pipeline_jobs ({_job_columns})
SELECT {_job_columns} FROM staging_pipeline_jobs
ON CONFLICT (id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "id")}
"""
_INSERT_EVENTS = f"""
INSERT INTO job_events ({", ".join(EVENT_COLUMNS)})
SELECT {", ".join(EVENT_COLUMNS)} FROM staging_job_events
ON CONFLICT (event_id) DO NOTHING
"""
_result_columns = ", ".join(RESULT_COLUMNS)
# A redelivered chunk carries the very same rows: the first copy stays.
_INSERT_RESULTS = f"""
INSERT INTO trading_sweep_results ({_result_columns})
SELECT {_result_columns} FROM staging_trading_sweep_results
ON CONFLICT (job_id, ticker, strategy_type, fold, parameters_key) DO NOTHING
"""
# The rate is this batch's records over the time since the partition's previous commit: events per second as
# the projector applies them, near zero after a quiet spell.
_UPSERT_CHECKPOINT = """
INSERT INTO projection_checkpoints (projection, topic, partition, next_offset, updated_at, last_event_at)
VALUES (%s, %s, %s, %s, clock_timestamp(), %s)
ON CONFLICT (projection, topic, partition) DO UPDATE
SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at,
    last_event_at = coalesce(EXCLUDED.last_event_at, projection_checkpoints.last_event_at),
    events_per_second = (EXCLUDED.next_offset - projection_checkpoints.next_offset)
        / greatest(extract(epoch FROM EXCLUDED.updated_at - projection_checkpoints.updated_at), 0.001)
"""
# Taken shared by every batch, exclusively by a replay's swap: the swap sees the live tables between batches.
_PAUSE_FOR_SWAP = "SELECT pg_advisory_xact_lock_shared(%s)"
# Readers that push changes to screens listen here instead of polling; Postgres delivers at commit, and only then.
JOB_CHANGES_CHANNEL = "zixly_job_changes"
# A NOTIFY payload holds at most 8,000 bytes: job ids, comma-separated, 200 to a notification.
_IDS_PER_NOTIFICATION = 200


def change_notifications(job_ids: list[uuid.UUID]) -> list[str]:
    """The payloads announcing that these jobs' rows changed."""
    return [
        ",".join(str(job_id) for job_id in job_ids[i : i + _IDS_PER_NOTIFICATION])
        for i in range(0, len(job_ids), _IDS_PER_NOTIFICATION)
    ]


def _dump_json(value: Any) -> str | None:
    # Datetimes go through str() as they always have, so that rebuilt rows equal rows written before orjson.
    return None if value is None else orjson.dumps(value, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def job_copy_row(job: JobRow) -> tuple[Any, ...]:
    """A ``pipeline_jobs`` row in ``COLUMNS`` order, ready for COPY."""
    return tuple(_dump_json(getattr(job, c)) if c in _JSON_COLUMNS else getattr(job, c) for c in COLUMNS)


def event_copy_row(row: EventRow) -> tuple[Any, ...]:
    """A ``job_events`` row in ``EVENT_COLUMNS`` order, ready for COPY."""
    e = row.event
    return (
        e.event_id,
        e.job_id,
        e.tenant_id,
        e.event_type,
        e.schema_version,
        e.occurred_at,
        e.correlation_id,
        e.causation_id,
        e.producer,
        timeline_payload(e),
        row.partition,
        row.offset,
    )


class PostgresProjectionStore:
    def __init__(self, dsn: str, projection: str) -> None:
        self._dsn = dsn
        self._projection = projection
        self._connection: psycopg.AsyncConnection[Any] | None = None
        # The rebalance listener loads checkpoints from the consumer's own task, possibly while a batch's
        # transaction is open on the same connection: one user of the connection at a time.
        self._lock = asyncio.Lock()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed or self._connection.broken:
            connection = await psycopg.AsyncConnection.connect(self._dsn, autocommit=False)
            async with connection.transaction():
                await connection.execute(_SETUP)
            self._connection = connection
        return self._connection

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):  # closing a connection in a bad state must not fail
                await connection.close()

    async def load_checkpoints(self, topic: str) -> dict[int, int]:
        async with self._lock:
            return await self._load_checkpoints(topic)

    async def _load_checkpoints(self, topic: str) -> dict[int, int]:
        connection = await self._connect()
        async with connection.transaction():
            cursor = await connection.execute(
                "SELECT partition, next_offset FROM projection_checkpoints WHERE projection = %s AND topic = %s",
                (self._projection, topic),
            )
            return {partition: offset for partition, offset in await cursor.fetchall()}

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[ProjectionUnitOfWork]:
        async with self._lock:
            connection = await self._connect()
            try:
                async with connection.transaction():
                    await connection.execute(_PAUSE_FOR_SWAP, (SWAP_LOCK,))
                    yield _PostgresUnitOfWork(connection, self._projection)
            except psycopg.Error:
                # A batch that failed half-way (Postgres went away during an executemany, say) can leave the
                # connection neither broken nor usable, stuck in pipeline mode; the retry gets a fresh one.
                await self.close()
                raise


class _PostgresUnitOfWork:
    def __init__(self, connection: psycopg.AsyncConnection[Any], projection: str) -> None:
        self._connection = connection
        self._projection = projection

    async def load_jobs(self, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, JobRow]:
        ids = list(job_ids)
        if not ids:
            return {}
        async with self._connection.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(f"SELECT {_job_columns} FROM pipeline_jobs WHERE id = ANY(%s)", (ids,))
            return {row["id"]: JobRow(**row) for row in await cursor.fetchall()}

    async def write(
        self,
        events: list[EventRow],
        jobs: list[JobRow],
        checkpoints: Mapping[tuple[str, int], int],
        sweep_results: list[ResultRow] | None = None,
        event_times: Mapping[tuple[str, int], datetime] | None = None,
    ) -> None:
        async with self._connection.cursor() as cursor:
            if events:
                async with cursor.copy(f"COPY staging_job_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                    for row in events:
                        await copy.write_row(event_copy_row(row))
                await cursor.execute(_INSERT_EVENTS)
            if jobs:
                async with cursor.copy(f"COPY staging_pipeline_jobs ({_job_columns}) FROM STDIN") as copy:
                    for job in jobs:
                        await copy.write_row(job_copy_row(job))
                for statement in job_stats.LIVE_STATEMENTS:  # reads the old rows: before they are replaced
                    await cursor.execute(statement)
                await cursor.execute(_UPSERT_JOBS)
            if sweep_results:
                async with cursor.copy(f"COPY staging_trading_sweep_results ({_result_columns}) FROM STDIN") as copy:
                    for result in sweep_results:
                        await copy.write_row(result)
                await cursor.execute(_INSERT_RESULTS)
            if jobs:
                await cursor.execute(
                    "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload",
                    (JOB_CHANGES_CHANNEL, change_notifications([job.id for job in jobs])),
                )
            if checkpoints:
                await cursor.executemany(
                    _UPSERT_CHECKPOINT,
                    [
                        (self._projection, topic, partition, offset, (event_times or {}).get((topic, partition)))
                        for (topic, partition), offset in checkpoints.items()
                    ],
                )
