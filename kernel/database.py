"""Postgres access: SQLAlchemy engines for queries, plain psycopg for bulk writes."""

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel.settings import Settings


def make_async_engine(settings: Settings, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(settings.sqlalchemy_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
