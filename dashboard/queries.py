"""Read-only queries of the projections behind the dashboard's pages."""

from sqlalchemy import Engine, func, select

from schemas.read_model import pipeline_jobs


def job_counts_by_status(engine: Engine) -> dict[str, int]:
    query = select(pipeline_jobs.c.status, func.count()).group_by(pipeline_jobs.c.status)
    with engine.connect() as connection:
        return {status: count for status, count in connection.execute(query)}


def recent_jobs(engine: Engine, limit: int = 20) -> list[dict[str, object]]:
    query = (
        select(
            pipeline_jobs.c.id, pipeline_jobs.c.tenant_id, pipeline_jobs.c.job_type, pipeline_jobs.c.status,
            pipeline_jobs.c.progress, pipeline_jobs.c.created_at, pipeline_jobs.c.completed_at,
        )
        .order_by(pipeline_jobs.c.created_at.desc())
        .limit(limit)
    )  # fmt: skip
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
