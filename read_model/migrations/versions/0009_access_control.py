"""access control: service roles, row-level security, sealed secrets, users, sessions, API tokens, audit log

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

The role that runs migrations owns every table and writes the read model (the projector and replays use it). Two
roles are created for the services that face users: ``zixly_receiver`` and ``zixly_dashboard``. They log in with
passwords the deployment gives them (the local stack sets its own), read tenant data only through row-level
security keyed on ``zixly.tenant_id`` set per transaction, and are granted nothing they do not use. Each may take,
for one transaction, a role ``…_all`` with the same grants whose policy lets every tenant's rows through (a
platform admin's reads; finding a credential before its tenant is known). A login does not inherit it
(``NOINHERIT``): it must ask for it (``SET LOCAL ROLE``), which the code does only for those transactions.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

from kernel.secret_box import SecretBox
from kernel.settings import Settings, load_settings

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

SERVICE_ROLES = ("zixly_receiver", "zixly_dashboard")
EVERY_TENANT_ROLES = {role: f"{role}_all" for role in SERVICE_ROLES}
# Tables holding one tenant's rows, and the column that names the tenant.
TENANT_TABLES = {
    "pipeline_jobs": "tenant_id",
    "job_events": "tenant_id",
    "trading_sweep_results": "tenant_id",
    "job_counts_hourly": "tenant_id",
    "job_durations_hourly": "tenant_id",
    "webhook_receipts": "tenant_id",
    "tenants": "id",
    "tenant_webhook_secrets": "tenant_id",
    "api_tokens": "tenant_id",
    "dashboard_users": "tenant_id",
    "dashboard_sessions": "tenant_id",
    "audit_log": "tenant_id",
}
GRANTS = {
    "zixly_receiver": [
        "SELECT ON pipeline_jobs, projection_checkpoints, tenants, tenant_webhook_secrets, api_tokens",
        "UPDATE (last_used_at) ON api_tokens",
        "SELECT, INSERT, UPDATE, DELETE ON webhook_receipts",
        "SELECT, INSERT ON audit_log",
    ],
    "zixly_dashboard": [
        "SELECT ON pipeline_jobs, job_events, trading_sweep_results, job_counts_hourly, job_durations_hourly, "
        "projection_checkpoints, projection_versions, tenants",
        "SELECT, INSERT ON tenant_webhook_secrets",
        "UPDATE (expires_at) ON tenant_webhook_secrets",
        "SELECT, INSERT, UPDATE, DELETE ON api_tokens, dashboard_users, dashboard_sessions, login_throttle",
        "SELECT, INSERT ON audit_log",
    ],
}
# The same expressions as projections/job_stats.py (a migration stands alone, so they are written out again).
HOUR = "date_trunc('hour', created_at, 'UTC')"
DURATION = "(metrics->>'duration_ms')::float"
BUCKET = f"floor(4 * ln(greatest({DURATION}, 1)) / ln(2))::int"


def _create_role(role: str, options: str) -> None:
    # Roles belong to the cluster, not the database: another database's migration may create one at the same
    # moment, which is no error.
    op.execute(f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} {options}; END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$""")


def _create_roles() -> None:
    for role, every_tenant in EVERY_TENANT_ROLES.items():
        _create_role(role, "NOLOGIN NOINHERIT")
        _create_role(every_tenant, "NOLOGIN")
        # Even if the role was there before: inheriting the every-tenant role would let its policy through always.
        op.execute(f"ALTER ROLE {role} NOINHERIT")
        op.execute(f"GRANT {every_tenant} TO {role}")


def _identity_tables() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_api_tokens_tenant", "api_tokens", ["tenant_id"])
    op.create_table(
        "dashboard_users",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id", ondelete="CASCADE")),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.Text()),
        sa.Column("auth_provider", sa.String(16), nullable=False, server_default=sa.text("'local'")),
        sa.Column("subject", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("password_changed_at", sa.DateTime(timezone=True)),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ux_dashboard_users_email", "dashboard_users", [sa.text("lower(email)")], unique=True)
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_sha256", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("dashboard_users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.Text()),
    )
    op.create_index("ix_dashboard_sessions_user", "dashboard_sessions", ["user_id"])
    op.create_table(
        "login_throttle",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text()),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("ip", sa.String(64)),
        sa.Column("detail", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant_id", sa.text("at DESC")])
    op.create_index("ix_audit_log_at", "audit_log", [sa.text("at DESC")])
    # Append-only for everyone, the owner included: only `zixly audit prune` (which sets zixly.audit_retention in
    # its transaction) deletes, and nothing ever updates.
    op.execute("""CREATE FUNCTION zixly_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND current_setting('zixly.audit_retention', true) = 'on' THEN RETURN OLD; END IF;
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""")
    op.execute("""CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
                  FOR EACH ROW EXECUTE FUNCTION zixly_audit_append_only()""")
    op.execute("""CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
                  FOR EACH STATEMENT EXECUTE FUNCTION zixly_audit_append_only()""")


def _seal_secrets() -> None:
    """Webhook secrets and Slack URLs stored so far in plain text are sealed with the configured master key."""
    settings: Settings = context.config.attributes.get("settings") or load_settings()
    box = SecretBox.from_text(settings.master_keys.get_secret_value())
    connection = op.get_bind()
    op.alter_column("tenant_webhook_secrets", "secret", new_column_name="secret_sealed")
    rows = connection.execute(sa.text("SELECT id, tenant_id, secret_sealed FROM tenant_webhook_secrets")).all()
    for secret_id, tenant_id, secret in rows:
        if not SecretBox.is_sealed(secret):
            sealed = box.seal(secret, f"tenant_webhook_secrets:{tenant_id}")
            connection.execute(
                sa.text("UPDATE tenant_webhook_secrets SET secret_sealed = :s WHERE id = :i"),
                {"s": sealed, "i": secret_id},
            )
    rows = connection.execute(
        sa.text("SELECT id, notify_slack_webhook_url FROM tenants WHERE notify_slack_webhook_url IS NOT NULL")
    ).all()
    for tenant_id, url in rows:
        if not SecretBox.is_sealed(url):
            sealed = box.seal(url, f"tenants.notify_slack_webhook_url:{tenant_id}")
            connection.execute(
                sa.text("UPDATE tenants SET notify_slack_webhook_url = :s WHERE id = :i"), {"s": sealed, "i": tenant_id}
            )


def _rollups_per_tenant() -> None:
    """The overview's rollups gain the tenant, so that row-level security shows each tenant its own counts."""
    for table in ("job_counts_hourly", "job_durations_hourly"):
        op.execute(f"TRUNCATE {table}")
        op.add_column(table, sa.Column("tenant_id", sa.String(64), nullable=False))
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
    op.create_primary_key(
        "job_counts_hourly_pkey", "job_counts_hourly", ["hour", "tenant_id", "job_type", "status", "error_type"]
    )
    op.create_primary_key(
        "job_durations_hourly_pkey", "job_durations_hourly", ["hour", "tenant_id", "job_type", "bucket"]
    )
    op.execute(f"""INSERT INTO job_counts_hourly (hour, tenant_id, job_type, status, error_type, jobs, retried)
                   SELECT {HOUR}, tenant_id, job_type, status, coalesce(error_type, ''), count(*),
                          sum((attempts > 1)::int)
                   FROM pipeline_jobs GROUP BY 1, 2, 3, 4, 5""")
    op.execute(f"""INSERT INTO job_durations_hourly (hour, tenant_id, job_type, bucket, jobs)
                   SELECT {HOUR}, tenant_id, job_type, {BUCKET}, count(*) FROM pipeline_jobs
                   WHERE {DURATION} IS NOT NULL GROUP BY 1, 2, 3, 4""")


def _row_level_security() -> None:
    roles, every_tenant = ", ".join(SERVICE_ROLES), ", ".join(EVERY_TENANT_ROLES.values())
    for table, column in TENANT_TABLES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        mine = f"{column} = current_setting('zixly.tenant_id', true)"
        op.execute(f"CREATE POLICY tenant_isolation ON {table} TO {roles} USING ({mine}) WITH CHECK ({mine})")
        op.execute(f"CREATE POLICY every_tenant ON {table} TO {every_tenant} USING (true) WITH CHECK (true)")


def _grants() -> None:
    database = op.get_bind().execute(sa.text("SELECT current_database()")).scalar_one()
    for role, grants in GRANTS.items():
        for grantee in (role, EVERY_TENANT_ROLES[role]):
            op.execute(f'GRANT CONNECT ON DATABASE "{database}" TO {grantee}')
            op.execute(f"GRANT USAGE ON SCHEMA public TO {grantee}")
            for grant in grants:
                op.execute(f"GRANT {grant} TO {grantee}")


def upgrade() -> None:
    _create_roles()
    _identity_tables()
    _seal_secrets()
    _rollups_per_tenant()
    _row_level_security()
    _grants()


def downgrade() -> None:
    raise NotImplementedError("0009 seals secrets and changes every role's access: restore a backup instead")
