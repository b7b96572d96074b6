"""The overview's rollups (``job_counts_hourly``, ``job_durations_hourly``), kept in step with ``pipeline_jobs``.

Live, each batch adds its jobs' new rows and subtracts their old ones, in SQL, before the upsert replaces them: a
job that moves from RUNNING to COMPLETED moves one count. A replay computes the same tables from the rebuilt
``pipeline_jobs`` in one pass, so that both ways give identical rows (the swap's checksums compare them).
"""

from typing import Any

import psycopg
from psycopg import sql

TABLES = ("job_counts_hourly", "job_durations_hourly")

# The row's creation hour in UTC whatever the session's time zone, and its duration's quarter-octave bucket.
_HOUR = "date_trunc('hour', created_at, 'UTC')"
_DURATION = "(metrics->>'duration_ms')::float"
_BUCKET = f"floor(4 * ln(greatest({_DURATION}, 1)) / ln(2))::int"

_COUNTS = (
    f"SELECT {_HOUR} AS hour, tenant_id, job_type, status, coalesce(error_type, '') AS error_type, "
    f"(attempts > 1)::int AS retried FROM {{jobs}}"
)
_DURATIONS = (
    f"SELECT {_HOUR} AS hour, tenant_id, job_type, {_BUCKET} AS bucket FROM {{jobs}} WHERE {_DURATION} IS NOT NULL"
)

_OLD_ROWS = "(SELECT * FROM pipeline_jobs WHERE id IN (SELECT id FROM staging_pipeline_jobs)) AS old_rows"
# Old rows count -1, new rows +1; keys are written in order so that projectors of other partitions, touching the
# same hours, always lock them in the same order.
_COUNT_DELTAS = f"""
INSERT INTO job_counts_hourly AS total (hour, tenant_id, job_type, status, error_type, jobs, retried)
SELECT hour, tenant_id, job_type, status, error_type, sum(sign), sum(sign * retried) FROM (
    SELECT *, -1 AS sign FROM ({_COUNTS.format(jobs=_OLD_ROWS)}) AS old
    UNION ALL
    SELECT *, 1 FROM ({_COUNTS.format(jobs="staging_pipeline_jobs")}) AS new
) AS change
GROUP BY hour, tenant_id, job_type, status, error_type HAVING sum(sign) <> 0 OR sum(sign * retried) <> 0
ORDER BY hour, tenant_id, job_type, status, error_type
ON CONFLICT (hour, tenant_id, job_type, status, error_type) DO UPDATE
SET jobs = total.jobs + EXCLUDED.jobs, retried = total.retried + EXCLUDED.retried
"""
_DURATION_DELTAS = f"""
INSERT INTO job_durations_hourly AS total (hour, tenant_id, job_type, bucket, jobs)
SELECT hour, tenant_id, job_type, bucket, sum(sign) FROM (
    SELECT *, -1 AS sign FROM ({_DURATIONS.format(jobs=_OLD_ROWS)}) AS old
    UNION ALL
    SELECT *, 1 FROM ({_DURATIONS.format(jobs="staging_pipeline_jobs")}) AS new
) AS change
GROUP BY hour, tenant_id, job_type, bucket HAVING sum(sign) <> 0 ORDER BY hour, tenant_id, job_type, bucket
ON CONFLICT (hour, tenant_id, job_type, bucket) DO UPDATE SET jobs = total.jobs + EXCLUDED.jobs
"""
# A count that went to zero is no row at all, as in a table computed afresh (partial indexes find them).
_DROP_EMPTY = ("DELETE FROM job_counts_hourly WHERE jobs = 0", "DELETE FROM job_durations_hourly WHERE jobs = 0")

LIVE_STATEMENTS = (_COUNT_DELTAS, _DURATION_DELTAS, *_DROP_EMPTY)
"""Run in the batch's transaction after the new rows are in ``staging_pipeline_jobs``, before the upsert."""


def rebuild_statements(schema: str) -> list[sql.Composed]:
    """The rollups of ``schema``'s ``pipeline_jobs``, computed afresh (a replay, the migration's backfill)."""
    jobs = sql.SQL("{}.pipeline_jobs AS rows").format(sql.Identifier(schema)).as_string(None)
    counts, durations = (sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(t)) for t in TABLES)
    return [
        sql.SQL("TRUNCATE {}, {}").format(counts, durations),
        sql.SQL(
            "INSERT INTO {} (hour, tenant_id, job_type, status, error_type, jobs, retried) SELECT hour, "
            "tenant_id, job_type, status, error_type, count(*), sum(retried) FROM ({}) AS j "
            "GROUP BY hour, tenant_id, job_type, status, error_type"
        ).format(counts, sql.SQL(_COUNTS.format(jobs=jobs))),
        sql.SQL(
            "INSERT INTO {} (hour, tenant_id, job_type, bucket, jobs) SELECT hour, tenant_id, job_type, "
            "bucket, count(*) FROM ({}) AS j GROUP BY hour, tenant_id, job_type, bucket"
        ).format(durations, sql.SQL(_DURATIONS.format(jobs=jobs))),
    ]


async def rebuild(connection: psycopg.AsyncConnection[Any], schema: str) -> None:
    for statement in rebuild_statements(schema):
        await connection.execute(statement)
