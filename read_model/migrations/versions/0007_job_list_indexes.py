"""indexes for the read-only API's job list: keyset pages per filter, and text search

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

# The free-text filter of the job list matches this expression; a trigram index answers ILIKE '%…%' on it.
SEARCH_TEXT = "(parameters::text || ' ' || coalesce(error_type, '') || ' ' || coalesce(error_message, ''))"


def upgrade() -> None:
    # Each page is "the next N after this (sort key, id)": an index per common filter that ends in that key.
    op.drop_index("ix_pipeline_jobs_tenant_created", "pipeline_jobs")
    op.drop_index("ix_pipeline_jobs_status_created", "pipeline_jobs")
    op.create_index("ix_pipeline_jobs_created", "pipeline_jobs", [sa.text("created_at DESC"), sa.text("id DESC")])
    op.create_index("ix_pipeline_jobs_updated", "pipeline_jobs", [sa.text("updated_at DESC"), sa.text("id DESC")])
    for column in ("tenant_id", "status", "job_type"):
        op.create_index(
            f"ix_pipeline_jobs_{column}_created",
            "pipeline_jobs",
            [column, sa.text("created_at DESC"), sa.text("id DESC")],
        )
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX ix_pipeline_jobs_search ON pipeline_jobs USING gin ({SEARCH_TEXT} gin_trgm_ops)")


def downgrade() -> None:
    op.drop_index("ix_pipeline_jobs_search", "pipeline_jobs")
    for column in ("job_type", "status", "tenant_id"):
        op.drop_index(f"ix_pipeline_jobs_{column}_created", "pipeline_jobs")
    op.drop_index("ix_pipeline_jobs_updated", "pipeline_jobs")
    op.drop_index("ix_pipeline_jobs_created", "pipeline_jobs")
    op.create_index("ix_pipeline_jobs_status_created", "pipeline_jobs", ["status", sa.text("created_at DESC")])
    op.create_index("ix_pipeline_jobs_tenant_created", "pipeline_jobs", ["tenant_id", sa.text("created_at DESC")])
