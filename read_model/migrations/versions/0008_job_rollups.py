"""hourly rollups of pipeline_jobs for the dashboard's overview, filled from the jobs already projected

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# The same expressions as projections/job_stats.py, which keeps the tables in step from here on; a migration stands
# alone, so they are written out again rather than imported.
HOUR = "date_trunc('hour', created_at, 'UTC')"
DURATION = "(metrics->>'duration_ms')::float"
BUCKET = f"floor(4 * ln(greatest({DURATION}, 1)) / ln(2))::int"


def upgrade() -> None:
    op.create_table(
        "job_counts_hourly",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(200), nullable=False),
        sa.Column("jobs", sa.BigInteger(), nullable=False),
        sa.Column("retried", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "job_type", "status", "error_type"),
    )
    op.create_table(
        "job_durations_hourly",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_type", sa.String(64), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("jobs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "job_type", "bucket"),
    )
    # Counts that fall to zero are deleted in the projector's batch; these find them without a scan.
    op.create_index("ix_job_counts_hourly_empty", "job_counts_hourly", ["hour"], postgresql_where=sa.text("jobs = 0"))
    op.create_index(
        "ix_job_durations_hourly_empty", "job_durations_hourly", ["hour"], postgresql_where=sa.text("jobs = 0")
    )
    op.execute(f"""INSERT INTO job_counts_hourly (hour, job_type, status, error_type, jobs, retried)
                   SELECT {HOUR}, job_type, status, coalesce(error_type, ''), count(*), sum((attempts > 1)::int)
                   FROM pipeline_jobs GROUP BY 1, 2, 3, 4""")
    op.execute(f"""INSERT INTO job_durations_hourly (hour, job_type, bucket, jobs)
                   SELECT {HOUR}, job_type, {BUCKET}, count(*) FROM pipeline_jobs WHERE {DURATION} IS NOT NULL
                   GROUP BY 1, 2, 3""")


def downgrade() -> None:
    op.drop_table("job_durations_hourly")
    op.drop_table("job_counts_hourly")
