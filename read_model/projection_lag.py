"""How far behind the log the read model is, per partition: for ``zixly lag``, the API and the dashboard."""

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from kernel.log_reader import LogReader
from kernel.settings import Settings

# A rate recorded longer ago than this describes a burst that is over.
RATE_FRESH_SECONDS = 10.0


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    end_offset: int
    checkpoint: int
    last_event_at: datetime | None
    events_per_second: float
    checkpoint_updated_at: datetime | None

    @property
    def lag(self) -> int:
        return max(self.end_offset - self.checkpoint, 0)


@dataclass(frozen=True)
class ProjectionLag:
    projection: str
    topic: str
    measured_at: datetime
    partitions: list[PartitionLag]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def events_per_second(self) -> float:
        return sum(p.events_per_second for p in self.partitions)

    @property
    def last_event_at(self) -> datetime | None:
        return max((p.last_event_at for p in self.partitions if p.last_event_at), default=None)

    @property
    def freshness_seconds(self) -> float | None:
        """How old the newest applied event is; with no lag that is just how quiet the log has been."""
        last = self.last_event_at
        return None if last is None else max((self.measured_at - last).total_seconds(), 0.0)

    def as_json(self) -> dict[str, object]:
        return {
            "projection": self.projection,
            "topic": self.topic,
            "measured_at": self.measured_at.isoformat(),
            "lag": self.lag,
            "events_per_second": round(self.events_per_second, 1),
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
            "freshness_seconds": self.freshness_seconds,
            "caught_up": self.lag == 0,
            "partitions": [
                {
                    "partition": p.partition,
                    "end_offset": p.end_offset,
                    "checkpoint": p.checkpoint,
                    "lag": p.lag,
                    "last_event_at": p.last_event_at.isoformat() if p.last_event_at else None,
                    "events_per_second": round(p.events_per_second, 1),
                }
                for p in self.partitions
            ],
        }


async def projection_lag(settings: Settings, database: str | None = None) -> ProjectionLag:
    """Per partition, the log's end against the read model's checkpoint; ``database`` is the libpq URL to read
    checkpoints with (the owner's by default; the dashboard passes its own login)."""
    async with LogReader(settings, settings.job_events_topic) as reader:
        ends = await reader.end_offsets()
        beginnings = await reader.beginning_offsets()
    async with await psycopg.AsyncConnection.connect(database or settings.database, autocommit=True) as connection:
        cursor = await connection.execute(
            """SELECT partition, next_offset, last_event_at, events_per_second, updated_at, clock_timestamp()
               FROM projection_checkpoints WHERE projection = %s AND topic = %s""",
            (settings.projector_name, settings.job_events_topic),
        )
        stored = {row[0]: row[1:] for row in await cursor.fetchall()}
    now = datetime.now(UTC)
    partitions = []
    for partition, end in sorted(ends.items()):
        checkpoint, last_event_at, rate, updated_at, db_now = stored.get(
            partition, (beginnings[partition], None, None, None, now)
        )
        recent = updated_at is not None and (db_now - updated_at).total_seconds() < RATE_FRESH_SECONDS
        partitions.append(
            PartitionLag(partition, end, checkpoint, last_event_at, float(rate or 0) if recent else 0.0, updated_at)
        )
    return ProjectionLag(settings.projector_name, settings.job_events_topic, now, partitions)
