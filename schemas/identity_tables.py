"""Tables of who may do what: dashboard users and their sessions, API tokens, login throttling, the audit log.

Owned by the dashboard (operators manage them with the ``zixly`` command too); the receiver only reads API tokens.
None of them is a projection: a replay does not rebuild them, so they are the operational state to back up.
"""

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from schemas.read_model import metadata

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    # SHA-256 of the token's 32 random bytes: enough against guessing, cheap to check on every request.
    Column("secret_sha256", String(64), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Index("ix_api_tokens_tenant", "tenant_id"),
)

dashboard_users = Table(
    "dashboard_users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    # None for a platform admin, who sees every tenant.
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE")),
    Column("email", String(320), nullable=False),
    Column("role", String(32), nullable=False),
    Column("password_hash", Text),  # argon2id; None for users who sign in with OIDC only
    Column("auth_provider", String(16), nullable=False, server_default=text("'local'")),
    Column("subject", Text),  # the OIDC issuer's `sub`
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("password_changed_at", DateTime(timezone=True)),
    Column("disabled_at", DateTime(timezone=True)),
    Index("ux_dashboard_users_email", text("lower(email)"), unique=True),
)

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    # SHA-256 of the session id the cookie carries: a copy of this table logs nobody in.
    Column("id_sha256", String(64), primary_key=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey("dashboard_users.id", ondelete="CASCADE"), nullable=False),
    Column("tenant_id", String(64)),
    Column("role", String(32), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("ip", String(64)),
    Column("user_agent", Text),
    Index("ix_dashboard_sessions_user", "user_id"),
)

# Failures counted per e-mail address whether or not a user has it, so the answers reveal no accounts.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True)),
)

# Append-only: a trigger refuses UPDATE always and DELETE outside `zixly audit prune`.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
    Column("tenant_id", String(64)),
    Column("actor", Text, nullable=False),  # "user:<email>", "token:<id>", "cli:<os user>", "oidc:<email>"
    Column("action", String(64), nullable=False),
    Column("target", Text),
    Column("outcome", String(16), nullable=False),  # ok | denied | failed
    Column("ip", String(64)),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_audit_log_tenant_at", "tenant_id", text("at DESC")),
    Index("ix_audit_log_at", text("at DESC")),
)

# Values a tenant's jobs refer to by name ({"secret": "crm-token"} in an http.request header), resolved by the worker
# at run time: the log and the read model hold the name, never the value.
tenant_secrets = Table(
    "tenant_secrets",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("value_sealed", Text, nullable=False),  # kernel/secret_box.py, bound to the tenant and the name
    Column("created_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("ux_tenant_secrets_name", "tenant_id", "name", unique=True),
)
