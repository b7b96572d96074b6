"""tenant secrets that jobs refer to by name, and the worker's own login that may read them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

The worker reads a tenant's secret when its job runs, as role ``zixly_worker`` under row-level security keyed on
``zixly.tenant_id`` (like the receiver and the dashboard): it is granted that table and nothing else, and it has no
``…_all`` role, since a job always belongs to one tenant.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

WORKER = "zixly_worker"


def upgrade() -> None:
    op.execute(f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WORKER}') THEN
            CREATE ROLE {WORKER} NOLOGIN NOINHERIT;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$""")
    op.create_table(
        "tenant_secrets",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value_sealed", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    )
    op.create_index("ux_tenant_secrets_name", "tenant_secrets", ["tenant_id", "name"], unique=True)
    op.execute("ALTER TABLE tenant_secrets ENABLE ROW LEVEL SECURITY")
    mine = "tenant_id = current_setting('zixly.tenant_id', true)"
    op.execute(f"CREATE POLICY tenant_isolation ON tenant_secrets TO {WORKER} USING ({mine}) WITH CHECK ({mine})")
    database = op.get_bind().execute(sa.text("SELECT current_database()")).scalar_one()
    op.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {WORKER}')
    op.execute(f"GRANT USAGE ON SCHEMA public TO {WORKER}")
    op.execute(f"GRANT SELECT ON tenant_secrets TO {WORKER}")


def downgrade() -> None:
    op.drop_table("tenant_secrets")
    # The role stays: other databases of the cluster may use it.
