"""Tables of the read model (Postgres). The projector writes them; nothing else does.

They are projections of the log: dropping them and replaying the log gives them back row for row. The tables that
are not projections, and that a replay does not rebuild, are in ``schemas.operational_tables`` (tenants, receipts)
and ``schemas.identity_tables`` (users, tokens, audit); all share this module's ``metadata``.
"""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

pipeline_jobs = Table(
    "pipeline_jobs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("job_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("parameters", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("result", JSONB),
    Column("metrics", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("error_type", String(200)),
    Column("error_message", Text),
    Column("error_detail", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("progress", Float, nullable=False, server_default=text("0")),
    Column("progress_message", Text),
    Column("correlation_id", String(128), nullable=False),
    Column("idempotency_key", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("last_event_id", UUID(as_uuid=True), nullable=False),
    # Where the row's last applied event sits in the log; lets a reader wait for its own write.
    Column("log_partition", Integer, nullable=False),
    Column("log_offset", BigInteger, nullable=False),
    # Keyset pages of the job list, per common filter (migration 0007), and its text search.
    Index("ix_pipeline_jobs_created", text("created_at DESC"), text("id DESC")),
    Index("ix_pipeline_jobs_updated", text("updated_at DESC"), text("id DESC")),
    Index("ix_pipeline_jobs_tenant_id_created", "tenant_id", text("created_at DESC"), text("id DESC")),
    Index("ix_pipeline_jobs_status_created", "status", text("created_at DESC"), text("id DESC")),
    Index("ix_pipeline_jobs_job_type_created", "job_type", text("created_at DESC"), text("id DESC")),
    # A tenant's unfinished jobs, counted before the receiver accepts another (migration 0010).
    Index(
        "ix_pipeline_jobs_in_flight", "tenant_id", postgresql_where=text("status IN ('QUEUED', 'RUNNING', 'RETRYING')")
    ),
)

# What the job list's free-text filter searches; ix_pipeline_jobs_search (trigrams) indexes exactly this expression.
JOB_SEARCH_TEXT = "(parameters::text || ' ' || coalesce(error_type, '') || ' ' || coalesce(error_message, ''))"

# Rollups of pipeline_jobs for the dashboard's overview: jobs per creation hour (UTC), type, status and error type
# ('' for none), and the
# durations of those hours' jobs as a histogram of quarter-octave buckets (bucket b holds 2^(b/4) <= ms < 2^((b+1)/4)).
# The projector keeps them in step with pipeline_jobs in each batch; a month is a few thousand rows, not a million.
job_counts_hourly = Table(
    "job_counts_hourly",
    metadata,
    Column("hour", DateTime(timezone=True), nullable=False),
    # Per tenant, so that row-level security shows each tenant its own counts (migration 0009).
    Column("tenant_id", String(64), nullable=False),
    Column("job_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_type", String(200), nullable=False),
    Column("jobs", BigInteger, nullable=False),
    Column("retried", BigInteger, nullable=False),
    PrimaryKeyConstraint("hour", "tenant_id", "job_type", "status", "error_type"),
    # Counts that fell to zero are deleted in the same batch; this finds them without a scan.
    Index("ix_job_counts_hourly_empty", "hour", postgresql_where=text("jobs = 0")),
)
job_durations_hourly = Table(
    "job_durations_hourly",
    metadata,
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("job_type", String(64), nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("jobs", BigInteger, nullable=False),
    PrimaryKeyConstraint("hour", "tenant_id", "job_type", "bucket"),
    Index("ix_job_durations_hourly_empty", "hour", postgresql_where=text("jobs = 0")),
)

job_events = Table(
    "job_events",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("job_id", UUID(as_uuid=True), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("correlation_id", String(128), nullable=False),
    Column("causation_id", UUID(as_uuid=True)),
    Column("producer", String(64), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("log_partition", Integer, nullable=False),
    Column("log_offset", BigInteger, nullable=False),
    Index("ix_job_events_job", "job_id", "log_offset"),
)

projection_checkpoints = Table(
    "projection_checkpoints",
    metadata,
    Column("projection", String(64), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_event_at", DateTime(timezone=True)),
    Column("events_per_second", Float),
    PrimaryKeyConstraint("projection", "topic", "partition"),
)

projection_versions = Table(
    "projection_versions",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

trading_sweep_results = Table(
    "trading_sweep_results",
    metadata,
    Column("job_id", UUID(as_uuid=True), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("ticker", String(32), nullable=False),
    Column("strategy_type", String(32), nullable=False),
    # The parameters as canonical text ("fast=5,slow=20"): the row's identity within its job and strategy.
    Column("parameters_key", Text, nullable=False),
    Column("parameters", JSONB, nullable=False),
    Column("score", Float),
    Column("total_return", Float),
    Column("cagr", Float),
    Column("volatility", Float),
    Column("sharpe", Float),
    Column("sortino", Float),
    Column("calmar", Float),
    Column("max_drawdown", Float),
    Column("win_rate", Float),
    Column("trades", Integer, nullable=False),
    Column("exposure", Float, nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # The walk-forward fold whose training window ranked the row; 0 for a sweep ranked on one window.
    Column("fold", SmallInteger, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint(
        "job_id", "ticker", "strategy_type", "fold", "parameters_key", name="trading_sweep_results_pkey"
    ),
    # "Best N of a job", "best N per ticker" and "best N per ticker and strategy" are index scans.
    Index("ix_sweep_results_job_score", "job_id", text("score DESC NULLS LAST")),
    Index("ix_sweep_results_job_ticker_score", "job_id", "ticker", text("score DESC NULLS LAST")),
    Index(
        "ix_sweep_results_job_ticker_strategy_score", "job_id", "ticker", "strategy_type", text("score DESC NULLS LAST")
    ),
    Index("ix_sweep_results_tenant_recorded", "tenant_id", text("recorded_at DESC")),
)
