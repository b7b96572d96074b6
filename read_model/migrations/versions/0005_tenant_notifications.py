"""tenants' notification settings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("notify_slack_webhook_url", sa.Text()))
    op.add_column("tenants", sa.Column("notify_emails", sa.Text()))
    op.add_column("tenants", sa.Column("notify_on", sa.Text()))


def downgrade() -> None:
    for column in ("notify_on", "notify_emails", "notify_slack_webhook_url"):
        op.drop_column("tenants", column)
