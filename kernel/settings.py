"""Configuration, from the environment (and ``.env``), validated once at start-up."""

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Secrets of the local development stack. They are in this public file, so production refuses every one of them
# (kernel/environment.py).
DEVELOPMENT_CALLBACK_SECRET = "zixly-local-callback-secret"
DEVELOPMENT_SESSION_KEY = "zixly-development-session-key"
# "dev:" and 32 bytes (base64): sha256 of "zixly development master key".
DEVELOPMENT_MASTER_KEY = "dev:aXYa2ynW6/bEtuTjR9R0iFH9R0jGKi6O3itbwbVLaow="
# What the local S3 endpoint is sent (it accepts any credentials), so that boto3 does not search for real ones.
LOCAL_S3_CREDENTIALS = ("zixly", "zixly-local")
# The login roles the services use on Postgres (created by migration 0009), and the password each has on the
# local development stack.
SERVICE_DATABASE_ROLES = {"receiver": "zixly_receiver", "dashboard": "zixly_dashboard", "worker": "zixly_worker"}
DatabaseService = Literal["receiver", "dashboard", "worker"]


def project_root(start: Path | None = None) -> Path:
    """The nearest folder upwards holding this project's pyproject.toml, else the working directory."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "zixly-pipeline"' in pyproject.read_text():
            return folder
    return here


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZIXLY_", env_file=".env", extra="ignore")

    env: Literal["production", "development"] = Field(
        default="production",
        description="production refuses development secrets and unsigned tenants; development is loopback only.",
    )

    home: Path = Field(
        default_factory=lambda: project_root() / ".zixly",
        description="Data, logs and run files of the local stack.",
    )
    cache_dir: Path | None = Field(default=None, description="Downloaded jars; defaults to <home>/cache.")
    # Each listener a process opens appends {"listener", "port", "pid"} to this file once bound: a port set to 0 is
    # chosen by the system, and whoever started the process learns it here rather than racing for a free one.
    ready_file: Path | None = None

    # Unset means: the local stack runs its own server on the port below.
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "ZIXLY_KAFKA_BOOTSTRAP_SERVERS"),
    )
    database_url: str | None = Field(default=None, validation_alias=AliasChoices("DATABASE_URL", "ZIXLY_DATABASE_URL"))
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    # The Apache Kafka release the local stack runs (jars from Maven Central); both lines are tested.
    kafka_version: str = Field(default="4.4.0", pattern=r"^[34]\.\d+\.\d+$")
    # Brokers of the local stack: 1, or a replicated KRaft cluster (3) on the ports after the two above, two each.
    kafka_brokers: int = Field(default=1, ge=1, le=9)
    # Replicas of each topic the project creates, and how many must have an append before it is acknowledged
    # (acks=all). Unset: 3 and 2 on a cluster of three or more brokers, 1 and 1 on fewer.
    topic_replication_factor: int | None = Field(default=None, ge=1)
    topic_min_insync_replicas: int | None = Field(default=None, ge=1)
    # How every client (producers, consumers, admin, the Faust workers) talks to the brokers. The local stack's own
    # broker serves the same protocol with a CA of its own (kafka_tls_ca) and the SCRAM user below.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="SASL_SSL with SCRAM for a cluster beyond this host."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="The CA bundle that signs the brokers' certificates; unset: the system's CAs."
    )
    kafka_ssl_certfile: Path | None = Field(default=None, description="A client certificate, for mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="The key of kafka_ssl_certfile.")
    kafka_heap: str = "512m"
    postgres_port: int = 5432

    job_events_topic: str = "zixly.job-events"
    topic_partitions: int = Field(default=6, ge=1, le=1000)

    receiver_host: str = "127.0.0.1"
    receiver_port: int = 8000
    receiver_workers: int = Field(default=1, ge=1, le=64)
    public_base_url: str | None = Field(default=None, description="Base of the status URLs handed out.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    notifier_metrics_port: int = 9103
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "zixly@localhost"
    # Mail goes to the relay over TLS: STARTTLS on the port above (587 usually) or TLS from the first byte ("tls",
    # 465 usually). "none" is for a relay on this host only; production refuses it for any other.
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_ca_file: Path | None = Field(default=None, description="The CA that signs the relay's certificate.")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    notification_attempts: int = Field(default=3, ge=1, le=20)
    notification_timeout_seconds: float = Field(default=10.0, gt=0)
    notifier_concurrency: int = Field(
        default=32, ge=1, le=1000, description="Jobs the notifier notifies about at once (one job's outcomes in order)."
    )
    allow_unregistered_tenants: bool | None = Field(
        default=None,
        description="Accept unsigned webhooks (and header-named reads) from tenants not in the tenants table; "
        "unset: in development only. Production refuses it.",
    )
    tenant_rate_per_second: float = Field(
        default=1000.0, gt=0, description="Webhooks a tenant may send per second, per receiver process."
    )
    tenant_rate_burst: int = Field(default=2000, ge=1, description="Webhooks a tenant may send at once.")
    token_rate_per_second: float = Field(default=50.0, gt=0, description="Reads an API token may make per second.")
    token_rate_burst: int = Field(default=100, ge=1)
    tenant_max_in_flight: int = Field(
        default=20_000, ge=1, description="A tenant's jobs queued, running or retrying before new ones get 429."
    )
    receiver_database_pool: int = Field(
        default=16,
        ge=1,
        le=200,
        description="Postgres connections a receiver process keeps open. A signed webhook uses one twice (its receipt);"
        " fewer than the requests in progress makes the pool open and close a connection per request.",
    )
    receiver_max_in_flight: int = Field(
        default=1000, ge=1, description="Appends waiting for the broker per receiver process before it sheds load."
    )
    publish_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long a webhook waits for the broker before answering 503."
    )

    worker_concurrency: int = Field(default=16, ge=1, le=1000)
    worker_queue_size: int = Field(
        default=10_000, ge=1, description="Requested jobs a worker holds, one queue per tenant, served in turn."
    )
    worker_publish_patience_seconds: float = Field(
        default=300.0, gt=0, description="How long a worker keeps retrying an append while the broker is away."
    )
    retries_topic: str = "zixly.job-retries"
    dead_letter_topic: str = "zixly.dead-letters"
    retry_max_attempts: int = Field(default=3, ge=1, le=100, description="Attempts per job, the first included.")
    retry_base_delay_seconds: float = Field(default=2.0, ge=0, description="Backoff before the second attempt.")
    retry_max_delay_seconds: float = Field(default=300.0, ge=0)
    attempt_timeout_seconds: float | None = Field(default=None, gt=0, description="Per attempt; unset: none.")
    retry_concurrency: int = Field(default=64, ge=1, le=10_000, description="Retries waiting at once per worker.")
    worker_metrics_port: int = 9101
    metrics_bind_host: str = Field(default="127.0.0.1", description="0.0.0.0 where Prometheus scrapes remotely.")
    http_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts the http.request job may call; '*.example.com' allows subdomains. None by default.",
    )
    outbound_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [80, 443], description="Ports outbound calls may use, comma-separated."
    )
    outbound_internal_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Internal hosts outbound calls may reach: 'host', 'host:port', 'tenant=host:port', comma-separated."
        " Every other private, loopback or link-local address is refused.",
    )

    projector_name: str = "jobs"
    status_max_wait_seconds: float = Field(
        default=30.0, gt=0, le=30, description="Cap on how long a status read waits for the read model to catch up."
    )
    replay_processes: int = Field(default=2, ge=1, le=64, description="Processes that fold a replay, by partition.")
    replay_segment_events: int = Field(
        default=500_000, ge=100, description="Events a replay folds between commits (and so, at most, redoes)."
    )
    projector_on_version_change: Literal["rebuild", "refuse"] = Field(
        default="rebuild", description="What a projector does with tables that another projection version built."
    )
    projector_metrics_port: int = 9102
    log_health_seconds: float = Field(
        default=15.0, gt=0, description="How often the projector reads replicas and consumer groups' lag for metrics."
    )
    projector_batch_size: int = Field(default=5000, ge=1)
    projector_max_wait_ms: int = Field(default=100, ge=0)

    sweep_max_backtests: int = Field(
        default=2_000_000, ge=1, description="Largest sweep accepted: tickers times parameter combinations."
    )
    sweep_chunk_size: int = Field(
        default=1000, ge=1, le=5000, description="Backtests per chunk on the work topic (one results event each)."
    )
    sweep_chunks_topic: str = "zixly.sweep-chunks"
    sweep_chunk_concurrency: int = Field(
        default=2, ge=1, le=64, description="Chunks a worker runs at once (one process-pool slot each)."
    )
    sweep_top_cells: int = Field(default=3, ge=1, le=50, description="Best cells per ticker with equity curves.")
    sweep_external_services: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Tenant -> URL of its external backtest service, as JSON or 'tenant=url,tenant=url'.",
    )
    sweep_external_timeout_seconds: float = Field(default=10.0, gt=0)
    sweep_external_attempts: int = Field(default=3, ge=1, le=20)
    callback_max_body_bytes: int = Field(default=64 * 1_048_576, ge=1024)
    callback_wait_seconds: float = Field(
        default=3.0, ge=0, description="How long a callback waits for its job's dispatch to reach the read model."
    )
    callback_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_CALLBACK_SECRET),
        description="Signs the callback tokens handed to external services; set a real secret in production.",
    )
    master_keys: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_MASTER_KEY),
        description="Key-encryption keys for secrets at rest, 'id:base64-32-bytes', comma-separated, newest first "
        "(`zixly keys generate`).",
    )
    session_keys: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SESSION_KEY),
        description="Sign the dashboard's session cookies; comma-separated, newest first (older ones still verify).",
    )
    receiver_database_url: str | None = Field(
        default=None, description="The receiver's own Postgres login; unset: role zixly_receiver on DATABASE_URL."
    )
    dashboard_database_url: str | None = Field(
        default=None, description="The dashboard's own Postgres login; unset: role zixly_dashboard on DATABASE_URL."
    )
    worker_database_url: str | None = Field(
        default=None,
        description="The workers' own Postgres login (they read tenant secrets); unset: role zixly_worker on "
        "DATABASE_URL.",
    )
    session_idle_minutes: float = Field(default=30.0, gt=0, description="A session unused this long ends.")
    session_max_hours: float = Field(default=12.0, gt=0, description="A session ends this long after login.")
    login_max_failures: int = Field(default=5, ge=1, description="Failed logins before an account is locked.")
    login_lockout_minutes: float = Field(default=15.0, gt=0)
    cookie_secure: bool | None = Field(default=None, description="Secure cookies; unset: in production.")
    oidc_issuer: str | None = Field(default=None, description="An OpenID Connect issuer; unset: no OIDC sign-in.")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_audience: str | None = Field(default=None, description="Expected `aud` of tokens; unset: the client id.")
    oidc_tenant_claim: str = "zixly_tenant"
    oidc_role_claim: str = "zixly_role"
    oidc_scopes: str = "openid email profile"
    public_dashboard_url: str | None = Field(default=None, description="Base of the OIDC redirect address.")
    market_data_dir: Path | None = Field(
        default=None, description="CSV/Parquet price files; <home>/market-data by default."
    )
    market_data_url: str | None = Field(default=None, description="Base URL of the market-data HTTP API.")
    market_data_timeout_seconds: float = Field(default=10.0, gt=0)
    market_data_attempts: int = Field(default=4, ge=1, le=20)

    s3_endpoint_url: str | None = Field(
        default=None, description="An S3-compatible endpoint; unset, the local stack runs one (AWS when 'aws')."
    )
    s3_port: int = 9000
    s3_bucket: str = "zixly-artifacts"
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = Field(default=None, description="Unset: the AWS credential chain.")
    s3_secret_access_key: str | None = None

    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8050
    dashboard_metrics_port: int = 9104

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("http_allowed_hosts", "outbound_internal_hosts", "outbound_ports", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @field_validator("sweep_external_services", mode="before")
    @classmethod
    def _split_services(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("{"):
                return json.loads(value)
            pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
            return {tenant.strip(): url.strip() for tenant, url in pairs}
        return value

    @model_validator(mode="after")
    def _kafka_credentials_complete(self) -> "Settings":
        if self.kafka_uses_sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"ZIXLY_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "ZIXLY_KAFKA_SASL_USERNAME and ZIXLY_KAFKA_SASL_PASSWORD"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("ZIXLY_KAFKA_SSL_CERTFILE and ZIXLY_KAFKA_SSL_KEYFILE go together (mutual TLS)")
        return self

    @property
    def runs_own_kafka(self) -> bool:
        return self.kafka_bootstrap_servers is None

    @property
    def runs_own_postgres(self) -> bool:
        return self.database_url is None

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def kafka_tls_ca(self) -> Path | None:
        """What clients trust: the set CA bundle, else the local stack's own CA when it runs the broker, else the
        system's CAs (None)."""
        if self.kafka_ssl_cafile is not None:
            return self.kafka_ssl_cafile
        return self.home / "kafka" / "tls" / "ca.pem" if self.runs_own_kafka else None

    @cached_property
    def kafka_bootstrap(self) -> str:
        if self.kafka_bootstrap_servers:
            return self.kafka_bootstrap_servers
        return ",".join(f"127.0.0.1:{self.kafka_port + 2 * node}" for node in range(self.kafka_brokers))

    @cached_property
    def database(self) -> str:
        """A libpq URL (``postgresql://…``) for psycopg: the owner of the read model (migrations, projector)."""
        return _libpq(self.database_url or f"postgresql://zixly:zixly@127.0.0.1:{self.postgres_port}/zixly")

    def replaced(self, **changes: object) -> "Settings":
        """A copy with ``changes``. Unlike a bare ``model_copy``, which would keep the original's cached values, the
        values derived from fields (the database URL, the bootstrap servers) are derived again."""
        copy = self.model_copy(update=changes)
        for derived in ("kafka_bootstrap", "database"):
            copy.__dict__.pop(derived, None)
        return copy

    def database_named(self, name: str) -> str:
        """The URL of another database on the same server."""
        return self.database.rsplit("/", 1)[0] + f"/{name}"

    @property
    def sqlalchemy_url(self) -> str:
        return "postgresql+psycopg://" + self.database.removeprefix("postgresql://")

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.home / "cache"

    @property
    def market_data_folder(self) -> Path:
        return self.market_data_dir or self.home / "market-data"

    @property
    def runs_own_s3(self) -> bool:
        return self.s3_endpoint_url is None

    @property
    def s3_endpoint(self) -> str | None:
        """The endpoint boto3 is given; None means AWS's own."""
        if self.s3_endpoint_url == "aws":
            return None
        return self.s3_endpoint_url or f"http://127.0.0.1:{self.s3_port}"

    @property
    def receiver_base_url(self) -> str:
        return self.public_base_url or f"http://{self.receiver_host}:{self.receiver_port}"

    @property
    def dashboard_base_url(self) -> str:
        return self.public_dashboard_url or f"http://{self.dashboard_host}:{self.dashboard_port}"

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def accepts_unregistered_tenants(self) -> bool:
        if self.allow_unregistered_tenants is None:
            return self.development
        return self.allow_unregistered_tenants

    @property
    def secure_cookies(self) -> bool:
        return not self.development if self.cookie_secure is None else self.cookie_secure

    def service_database(self, service: DatabaseService) -> str:
        """The libpq URL a service logs in with: its own setting, else its role on the database of DATABASE_URL
        with the local stack's password for it (which production refuses)."""
        explicit = {
            "receiver": self.receiver_database_url,
            "dashboard": self.dashboard_database_url,
            "worker": self.worker_database_url,
        }[service]
        if explicit:
            return _libpq(explicit)
        role = SERVICE_DATABASE_ROLES[service]
        parts = urlsplit(self.database)
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{role}:{quote(role)}@{host}"))

    def service_sqlalchemy_url(self, service: DatabaseService) -> str:
        return "postgresql+psycopg://" + self.service_database(service).removeprefix("postgresql://")


def _libpq(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


def load_settings() -> Settings:
    return Settings()
