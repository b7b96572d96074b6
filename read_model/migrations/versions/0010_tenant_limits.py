"""per-tenant limits, and an index that counts a tenant's jobs in flight

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

LIMITS = ("rate_per_second", "rate_burst", "max_in_flight", "max_sweep_backtests")


def upgrade() -> None:
    # Null: the deployment's default (ZIXLY_TENANT_*).
    op.add_column("tenants", sa.Column("rate_per_second", sa.Float()))
    op.add_column("tenants", sa.Column("rate_burst", sa.Integer()))
    op.add_column("tenants", sa.Column("max_in_flight", sa.Integer()))
    op.add_column("tenants", sa.Column("max_sweep_backtests", sa.BigInteger()))
    # The receiver counts a tenant's unfinished jobs before it accepts another: an index of just those rows.
    op.create_index(
        "ix_pipeline_jobs_in_flight",
        "pipeline_jobs",
        ["tenant_id"],
        postgresql_where=sa.text("status IN ('QUEUED', 'RUNNING', 'RETRYING')"),
    )


def downgrade() -> None:
    op.drop_index("ix_pipeline_jobs_in_flight", "pipeline_jobs")
    for column in reversed(LIMITS):
        op.drop_column("tenants", column)
