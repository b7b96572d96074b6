"""Which version of each projection built the live tables, and what a projector does about a difference."""

import psycopg

from kernel.settings import Settings
from projections.catalogue import Projection, select
from projections.replay import REPLAY_LOCK
from projections.shadow import stored_versions


async def stale_projections(settings: Settings) -> list[tuple[Projection, int]]:
    """The projections whose tables another version of the code built, with that version."""
    async with await psycopg.AsyncConnection.connect(settings.database, autocommit=True) as connection:
        stored = await stored_versions(connection)
    return [(p, stored.get(p.name, 0)) for p in select(None) if stored.get(p.name) != p.version]


async def record_versions_if_empty(settings: Settings) -> bool:
    """On a read model that has projected nothing yet there is nothing to rebuild: record this code's versions."""
    async with (
        await psycopg.AsyncConnection.connect(settings.database, autocommit=True) as connection,
        connection.transaction(),
    ):
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (REPLAY_LOCK,))
        cursor = await connection.execute(
            "SELECT EXISTS (SELECT 1 FROM projection_checkpoints) OR EXISTS (SELECT 1 FROM pipeline_jobs) "
            "OR EXISTS (SELECT 1 FROM trading_sweep_results)"
        )
        row = await cursor.fetchone()
        if row is None or row[0]:
            return False
        for projection in select(None):
            await connection.execute(
                """INSERT INTO projection_versions (projection, version, built_at) VALUES (%s, %s, now())
                       ON CONFLICT (projection) DO UPDATE SET version = EXCLUDED.version, built_at = now()""",
                (projection.name, projection.version),
            )
        return True
