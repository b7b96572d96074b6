"""The tables a swap moved out (schema ``zixly_previous``): bringing them back, or dropping them."""

import psycopg

from kernel.settings import Settings
from projections.replay import ProgressCallback, Replay, ReplayReport
from projections.shadow import PREVIOUS, SHADOW, read_state, schema_exists


async def drop_previous(settings: Settings) -> bool:
    async with await psycopg.AsyncConnection.connect(settings.database, autocommit=True) as connection:
        existed = await schema_exists(connection, PREVIOUS)
        await connection.execute(f"DROP SCHEMA IF EXISTS {PREVIOUS} CASCADE")
        return existed


async def rollback(settings: Settings, progress: ProgressCallback | None = None) -> ReplayReport:
    """Brings the previous tables back: they become the shadow at the position they were swapped out at, catch up
    from there with the code now running, and swap in as a replay does."""
    async with await psycopg.AsyncConnection.connect(settings.database, autocommit=True) as connection:
        state = await read_state(connection, PREVIOUS)
        if state is None:
            raise LookupError(f"there is no previous version to roll back to (schema {PREVIOUS} is gone)")
        async with connection.transaction():
            await connection.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE")
            await connection.execute(f"ALTER SCHEMA {PREVIOUS} RENAME TO {SHADOW}")
    return await Replay(settings, list(state.projections), progress=progress).run(force=True, adopt=True)
