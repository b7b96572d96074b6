from alembic import context
from sqlalchemy import create_engine, pool

# Imported for their tables, which join the one metadata that migrations compare against.
from schemas import identity_tables, operational_tables  # noqa: F401
from schemas.read_model import metadata

config = context.config


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            # Several services may start at once and each may try to migrate; one at a time.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7263001)")
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
