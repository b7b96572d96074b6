"""Settings for running a service in production mode on the test stack: fresh secrets, and Postgres logins of its
own that are members of the service roles (the stack's development logins are what production refuses)."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from pydantic import SecretStr

from kernel.secret_box import generate_master_key
from kernel.settings import SERVICE_DATABASE_ROLES, Settings


@dataclass(frozen=True)
class Production:
    env: dict[str, str]
    """The environment of a production-mode process."""
    settings: Settings
    """The same settings in process (their master key seals what the process will open)."""


@contextmanager
def production(stack: Settings) -> Iterator[Production]:
    suffix = secrets.token_hex(4)
    logins: dict[str, tuple[str, str]] = {}
    with psycopg.connect(stack.database, autocommit=True) as connection:
        for service, role in SERVICE_DATABASE_ROLES.items():
            login, password = f"{role}_{suffix}", secrets.token_urlsafe(16)
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                    sql.Identifier(login), sql.Literal(password), sql.Identifier(role)
                )
            )
            logins[service] = (login, password)
    parts = urlsplit(stack.database)
    host = parts.netloc.rsplit("@", 1)[-1]

    def url(service: str) -> str:
        login, password = logins[service]
        return urlunsplit(parts._replace(netloc=f"{login}:{password}@{host}"))

    env = {
        "ZIXLY_ENV": "production",
        "ZIXLY_CALLBACK_SECRET": secrets.token_urlsafe(24),
        "ZIXLY_MASTER_KEYS": generate_master_key("test"),
        "ZIXLY_SESSION_KEYS": secrets.token_urlsafe(24),
        "ZIXLY_RECEIVER_DATABASE_URL": url("receiver"),
        "ZIXLY_DASHBOARD_DATABASE_URL": url("dashboard"),
        "ZIXLY_WORKER_DATABASE_URL": url("worker"),
        # The local S3 endpoint accepts any keys; production only asks that they are not the development ones.
        "ZIXLY_S3_ENDPOINT_URL": stack.s3_endpoint or "",
        "ZIXLY_S3_ACCESS_KEY_ID": secrets.token_hex(8),
        "ZIXLY_S3_SECRET_ACCESS_KEY": secrets.token_hex(16),
    }
    settings = stack.replaced(
        env="production",
        callback_secret=SecretStr(env["ZIXLY_CALLBACK_SECRET"]),
        master_keys=SecretStr(env["ZIXLY_MASTER_KEYS"]),
        session_keys=SecretStr(env["ZIXLY_SESSION_KEYS"]),
        receiver_database_url=env["ZIXLY_RECEIVER_DATABASE_URL"],
        dashboard_database_url=env["ZIXLY_DASHBOARD_DATABASE_URL"],
        worker_database_url=env["ZIXLY_WORKER_DATABASE_URL"],
    )
    try:
        yield Production(env, settings)
    finally:
        with psycopg.connect(stack.database, autocommit=True) as connection:
            for login, _ in logins.values():
                with suppress(psycopg.Error):
                    connection.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(login)))
