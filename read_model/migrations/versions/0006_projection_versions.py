"""projection versions, and freshness on the projector's checkpoints

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Which code built each projection's tables. The rows say version 1: what every projection was before versions
    # were recorded, so a projector with newer code rebuilds them.
    op.create_table(
        "projection_versions",
        sa.Column("projection", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.execute("INSERT INTO projection_versions (projection, version) VALUES ('jobs', 1), ('sweep_results', 1)")
    op.add_column("projection_checkpoints", sa.Column("last_event_at", sa.DateTime(timezone=True)))
    op.add_column("projection_checkpoints", sa.Column("events_per_second", sa.Float()))


def downgrade() -> None:
    op.drop_column("projection_checkpoints", "events_per_second")
    op.drop_column("projection_checkpoints", "last_event_at")
    op.drop_table("projection_versions")
