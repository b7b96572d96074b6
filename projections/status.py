"""What the read model holds: each projection's version in the code and in the database."""

from dataclasses import dataclass

import psycopg

from kernel.settings import Settings
from projections.catalogue import PROJECTIONS, Projection
from projections.shadow import PREVIOUS, SHADOW, read_state


@dataclass(frozen=True)
class ProjectionStatus:
    projection: Projection
    stored_version: int | None
    built_at: str | None


async def projection_status(settings: Settings) -> tuple[list[ProjectionStatus], str | None, str | None]:
    """The projections, and a description of the shadow and previous schemas where they exist."""
    async with await psycopg.AsyncConnection.connect(settings.database, autocommit=True) as connection:
        cursor = await connection.execute("SELECT projection, version, built_at FROM projection_versions")
        stored = {name: (version, built_at) for name, version, built_at in await cursor.fetchall()}
        described: list[str | None] = []
        for schema in (SHADOW, PREVIOUS):
            state = await read_state(connection, schema)
            described.append(
                None
                if state is None
                else (
                    f"{', '.join(f'{p} v{v}' for p, v in state.projections.items())} at "
                    f"{sum(state.offsets.values()):,} events{'' if state.indexed else ' (unfinished)'}"
                )
            )
    rows = [
        ProjectionStatus(
            p, stored.get(p.name, (None, None))[0], str(stored[p.name][1])[:19] if p.name in stored else None
        )
        for p in PROJECTIONS.values()
    ]
    return rows, described[0], described[1]
