"""Schema migrations of the read model, with Alembic, run programmatically (``zixly db upgrade``)."""

from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql

from kernel.settings import SERVICE_DATABASE_ROLES, Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.sqlalchemy_url.replace("%", "%%"))
    config.attributes["settings"] = settings  # migrations that seal secrets need the master keys
    return config


def provision_service_logins(settings: Settings) -> list[str]:
    """Lets the services' roles (created by the migrations) log in, with the passwords their
    configured URLs carry. Run by the local stack, and by a deployment's set-up step (`zixly db logins`) where
    the owner may alter roles. Returns the roles provisioned; a URL with another user is provisioned by whoever
    configured it, and skipped."""
    provisioned = []
    with psycopg.connect(settings.database, autocommit=True) as connection:
        for service, role in SERVICE_DATABASE_ROLES.items():
            url = urlsplit(settings.service_database(service))  # type: ignore[arg-type]
            if url.username != role or url.password is None:
                continue
            statement = sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(unquote(url.password))
            )
            connection.execute(statement)
            provisioned.append(role)
    return provisioned


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)
