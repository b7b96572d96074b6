"""a walk-forward fold per sweep result: each fold's training window ranks the whole grid again

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

Rows of a sweep without walk-forward are fold 0, the one window they were ranked on. The key gains the fold, so that
the same combination ranked on two training windows keeps both rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

TABLE = "trading_sweep_results"
KEY = "trading_sweep_results_pkey"


def upgrade() -> None:
    # A constant default is stored in the catalogue: no row is rewritten, only the key's index is built again.
    op.add_column(TABLE, sa.Column("fold", sa.SmallInteger(), nullable=False, server_default="0"))
    op.drop_constraint(KEY, TABLE, type_="primary")
    op.create_primary_key(KEY, TABLE, ["job_id", "ticker", "strategy_type", "fold", "parameters_key"])


def downgrade() -> None:
    op.execute(f"DELETE FROM {TABLE} WHERE fold <> 0")
    op.drop_constraint(KEY, TABLE, type_="primary")
    op.create_primary_key(KEY, TABLE, ["job_id", "ticker", "strategy_type", "parameters_key"])
    op.drop_column(TABLE, "fold")
