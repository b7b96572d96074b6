"""Isolation and secrecy held by Postgres itself, whatever the code asks: the services' roles see only the tenant
set for their transaction, may not write the read model, keep it so after a replay's swap; the audit log only
grows; and no secret, token or password is stored in plain text."""

import asyncio
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from identity.api_tokens import PREFIX
from identity.tenant_secrets import TenantSecretStore
from identity.tenants import TenantDirectory
from kernel.database import TenantScope, psycopg_scope_sql
from kernel.secret_box import SecretBox, generate_master_key
from kernel.settings import Settings
from projections.replay import Replay
from schemas.access import Role
from tests.identities import PASSWORD, create_tenant, create_token, create_user, set_tenant_secret
from tests.integration.isolated import isolated_read_model
from zixly.key_rotation import key_usage, rotate
from zixly.stack.postgres_server import find_bindir

TENANT_TABLES = ("pipeline_jobs", "job_events", "trading_sweep_results", "job_counts_hourly", "job_durations_hourly")
READ_MODEL_WRITES = (
    "INSERT INTO pipeline_jobs (id, tenant_id) VALUES (gen_random_uuid(), 'acme')",
    "UPDATE pipeline_jobs SET status = 'COMPLETED'",
    "DELETE FROM job_events",
    "DELETE FROM trading_sweep_results",
    "UPDATE job_counts_hourly SET jobs = 0",
    "TRUNCATE pipeline_jobs",
    "UPDATE projection_checkpoints SET next_offset = 0",
)


def rows_seen(settings: Settings, service: str, tenant: str | None, table: str) -> set[str]:
    """The tenants of the rows a service's role sees in ``table`` with no WHERE clause at all."""
    with psycopg.connect(settings.service_database(service)) as connection:  # type: ignore[arg-type]
        if tenant is not None:
            opening = psycopg_scope_sql(TenantScope.of(tenant), service)  # type: ignore[arg-type]
            assert opening is not None
            connection.execute(*opening)
        return {row[0] for row in connection.execute(f"SELECT tenant_id FROM {table}").fetchall()}


def assert_isolated(settings: Settings) -> None:
    for table in TENANT_TABLES:
        assert rows_seen(settings, "dashboard", "acme", table) == {"acme"}, table
        assert rows_seen(settings, "dashboard", "globex", table) <= {"globex"}, table
        assert rows_seen(settings, "dashboard", None, table) == set(), f"{table}: no scope, no rows"
    assert rows_seen(settings, "receiver", "acme", "pipeline_jobs") == {"acme"}
    with psycopg.connect(settings.service_database("dashboard"), autocommit=True) as connection:
        for statement in READ_MODEL_WRITES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(statement)


def test_the_dashboards_role_sees_only_the_scoped_tenant_and_cannot_write_even_after_a_replay(
    golden: Settings,
) -> None:
    owner = {row for table in TENANT_TABLES for row in rows_seen_by_owner(golden, table)}
    assert {"acme", "globex", "initech"} <= owner, "the golden log holds several tenants"
    assert_isolated(golden)
    report = asyncio.run(Replay(golden, processes=1).run())
    assert report.swapped
    assert_isolated(golden)


def rows_seen_by_owner(settings: Settings, table: str) -> set[str]:
    with psycopg.connect(settings.database) as connection:
        return {row[0] for row in connection.execute(f"SELECT tenant_id FROM {table}").fetchall()}


def test_the_receivers_role_reads_credentials_and_writes_receipts_nothing_else(golden: Settings) -> None:
    with psycopg.connect(golden.service_database("receiver"), autocommit=True) as connection:
        for statement in (
            *READ_MODEL_WRITES,
            "SELECT * FROM dashboard_users",
            "SELECT * FROM dashboard_sessions",
            "UPDATE api_tokens SET role = 'tenant-admin'",
            "DELETE FROM audit_log",
            "INSERT INTO tenants (id, name) VALUES ('x', 'x')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(statement)


def test_the_workers_role_reads_only_the_scoped_tenants_secrets_and_nothing_else(fresh: Settings) -> None:
    for tenant in ("acme", "globex"):
        create_tenant(fresh, tenant)
        set_tenant_secret(fresh, tenant, "crm", f"{tenant}-value")
    assert rows_seen(fresh, "worker", "acme", "tenant_secrets") == {"acme"}
    assert rows_seen(fresh, "worker", None, "tenant_secrets") == set()
    with psycopg.connect(fresh.service_database("worker"), autocommit=True) as connection:
        for statement in (
            "SELECT * FROM pipeline_jobs",
            "SELECT * FROM tenants",
            "SELECT * FROM tenant_webhook_secrets",
            "SELECT * FROM api_tokens",
            "DELETE FROM tenant_secrets",
            "UPDATE tenant_secrets SET name = 'x'",
            "INSERT INTO tenant_secrets (id, tenant_id, name, value_sealed, created_by) "
            "VALUES (gen_random_uuid(), 'acme', 'x', 'x', 'x')",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(statement)
    for service in ("receiver", "dashboard"):
        with (
            psycopg.connect(fresh.service_database(service), autocommit=True) as connection,  # type: ignore[arg-type]
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            connection.execute("SELECT * FROM tenant_secrets")


def test_the_audit_log_refuses_updates_and_deletes_even_from_its_owner(golden: Settings) -> None:
    with psycopg.connect(golden.database, autocommit=True) as connection:
        connection.execute("INSERT INTO audit_log (actor, action, outcome) VALUES ('test', 'probe', 'ok')")
        for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                connection.execute(statement)
        assert connection.execute("SELECT count(*) FROM audit_log WHERE action = 'probe'").fetchone() == (1,)


@pytest.fixture
def fresh(stack: Settings) -> Iterator[Settings]:
    with isolated_read_model(stack) as settings:
        yield settings


def test_no_secret_token_or_password_is_stored_in_plain_text(fresh: Settings) -> None:
    tenant = create_tenant(fresh, "acme")
    token = create_token(fresh, "acme", Role.OPERATOR)
    create_user(fresh, "ops@acme.test", Role.OPERATOR, "acme", password=PASSWORD)
    slack = "https://hooks.slack.test/services/T000/B000/very-secret-path"
    box = SecretBox.from_text(fresh.master_keys.get_secret_value())

    async def notify() -> None:
        from kernel.database import make_async_engine

        engine = make_async_engine(fresh, pool_size=1)
        try:
            await TenantDirectory(engine, box).set_notifications("acme", slack, "ops@acme.test", "failed")
        finally:
            await engine.dispose()

    asyncio.run(notify())
    set_tenant_secret(fresh, "acme", "crm", "crm-secret-value-of-acme")
    dump = subprocess.run(
        [str(find_bindir() / "pg_dump"), "--data-only", fresh.database], capture_output=True, text=True, check=True
    ).stdout
    assert "ops@acme.test" in dump  # the dump is the data: what is not secret is there to be seen
    # zxt_<token id>_<secret>: the secret is URL-safe base64, which has underscores of its own (CI once took the
    # "I" after one for the secret, and found it in the dump).
    secret_part = token.removeprefix(PREFIX).split("_", 1)[1]
    assert len(secret_part) >= 40
    for plain in (
        tenant.secret,
        tenant.secret.removeprefix("whsec_"),
        secret_part,
        PASSWORD,
        slack,
        "very-secret-path",
        "crm-secret-value-of-acme",
    ):
        assert plain not in dump, f"{plain[:12]}… is stored in plain text"


def test_rotating_the_master_key_rewraps_every_sealed_value_and_they_still_open(fresh: Settings) -> None:
    tenant = create_tenant(fresh, "acme")
    set_tenant_secret(fresh, "acme", "crm", "crm-value")
    new_key = generate_master_key("next")
    rotated = fresh.replaced(master_keys=type(fresh.master_keys)(f"{new_key},{fresh.master_keys.get_secret_value()}"))

    async def run() -> None:
        from kernel.database import make_async_engine

        engine = make_async_engine(rotated, pool_size=1)
        try:
            box = SecretBox.from_text(rotated.master_keys.get_secret_value())
            assert set(await key_usage(engine)) == {"dev"}
            rotated_counts = await rotate(engine, box)
            assert (rotated_counts["tenant_webhook_secrets"], rotated_counts["tenant_secrets"]) == (1, 1)
            assert set(await key_usage(engine)) == {"next"}
            assert await TenantSecretStore(engine, SecretBox.from_text(new_key)).value("acme", "crm") == "crm-value"
            only_new = TenantDirectory(engine, SecretBox.from_text(new_key))
            found = await only_new.secrets_of("acme")
            assert found is not None
            assert found.secrets == (tenant.secret,)
        finally:
            await engine.dispose()

    asyncio.run(run())
