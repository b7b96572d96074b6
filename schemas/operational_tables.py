"""Operational tables: state that services own and that no replay rebuilds (back it up with the database).

The receiver's receipts of idempotent webhooks, and the tenants with the secrets that sign their webhooks. The
users, sessions, API tokens and audit log are in ``schemas.identity_tables``.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from schemas.read_model import metadata

# Owned by the receiver, not a projection: which (tenant, idempotency key) became which job, so that a redelivered
# webhook is answered without appending anything.
webhook_receipts = Table(
    "webhook_receipts",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("job_id", UUID(as_uuid=True), nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("correlation_id", String(128), nullable=False),
    Column("state", String(16), nullable=False),  # pending | appended
    Column("log_partition", Integer),
    Column("log_offset", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    PrimaryKeyConstraint("tenant_id", "idempotency_key"),
)

# Written by operators (`zixly tenants`), read by the receiver: who may send webhooks, and the secrets that sign them.
tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("notify_slack_webhook_url", Text),  # sealed (kernel/secret_box.py)
    Column("notify_emails", Text),
    Column("notify_on", Text),
    # Per-tenant limits; None: the deployment's default (ZIXLY_TENANT_*).
    Column("rate_per_second", Float),
    Column("rate_burst", Integer),
    Column("max_in_flight", Integer),
    Column("max_sweep_backtests", BigInteger),
)

tenant_webhook_secrets = Table(
    "tenant_webhook_secrets",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    # Sealed with a master key from the environment (kernel/secret_box.py), never stored in plain text.
    Column("secret_sealed", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    # A rotated-out secret keeps working until then, so senders can switch without a gap.
    Column("expires_at", DateTime(timezone=True)),
    Index("ix_tenant_webhook_secrets_tenant", "tenant_id"),
)
