"""trading_sweep_results

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_METRICS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown", "win_rate")


def upgrade() -> None:
    op.create_table(
        "trading_sweep_results",
        sa.Column("job_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("strategy_type", sa.String(32), nullable=False),
        sa.Column("parameters_key", sa.Text(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(), nullable=False),
        sa.Column("score", sa.Float()),
        *[sa.Column(name, sa.Float()) for name in _METRICS],
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("exposure", sa.Float(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "ticker", "strategy_type", "parameters_key"),
    )
    op.create_index("ix_sweep_results_job_score", "trading_sweep_results", ["job_id", sa.text("score DESC NULLS LAST")])
    op.create_index(
        "ix_sweep_results_job_ticker_score",
        "trading_sweep_results",
        ["job_id", "ticker", sa.text("score DESC NULLS LAST")],
    )
    op.create_index(
        "ix_sweep_results_job_ticker_strategy_score",
        "trading_sweep_results",
        ["job_id", "ticker", "strategy_type", sa.text("score DESC NULLS LAST")],
    )
    op.create_index(
        "ix_sweep_results_tenant_recorded", "trading_sweep_results", ["tenant_id", sa.text("recorded_at DESC")]
    )


def downgrade() -> None:
    op.drop_table("trading_sweep_results")
