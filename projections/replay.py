"""Rebuilding projections from the log into the shadow schema, and swapping them in without downtime.

1. Build: fold the log from the start (or from where an interrupted replay stopped) into ``zixly_shadow`` with
   COPY, writing the position with every segment so that a replay can be resumed.
2. Catch up: follow the live projector's position (or the log's end when no projector is running) until the gap
   is small, then build the secondary indexes.
3. Swap: pause the live projector between two batches (an advisory lock its batches share), bring the shadow to
   exactly its position, compare both sets of tables (row counts and content checksums), and swap them in one
   transaction. The outgoing tables stay in ``zixly_previous`` for a rollback.

Tables built by the same version of the code must be identical to the live ones; if they are not, the swap is
refused (``force`` overrides). When the versions differ the difference is the point, and it is reported.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from kernel.kafka import group_has_members
from kernel.log_reader import LogReader, Offsets
from kernel.logging import get_logger
from kernel.settings import Settings
from projections import job_stats
from projections.catalogue import Projection, select
from projections.fold_workers import FoldWorkers
from projections.shadow import (
    LIVE,
    SHADOW,
    SWAP_LOCK,
    Connection,
    ShadowState,
    Statement,
    create_shadow,
    missing_indexes,
    read_state,
    stored_versions,
    swap,
    table_checksums,
    write_state,
)

log = get_logger(__name__)

# Session lock held for the whole of a replay: one replay at a time, whoever starts it.
REPLAY_LOCK = SWAP_LOCK - 1
CATCH_UP_GAP = 20_000


@dataclass
class ReplayProgress:
    phase: str
    done: int = 0
    total: int = 0
    positions: dict[int, int] = field(default_factory=dict)
    targets: dict[int, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    @property
    def events_per_second(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class TableCheck:
    table: str
    live_rows: int
    live_checksum: str
    rebuilt_rows: int
    rebuilt_checksum: str

    @property
    def matches(self) -> bool:
        return (self.live_rows, self.live_checksum) == (self.rebuilt_rows, self.rebuilt_checksum)


@dataclass(frozen=True)
class ReplayReport:
    projections: dict[str, int]
    previous_versions: dict[str, int]
    events: int
    seconds: float
    resumed: bool
    swapped: bool
    comparable: bool
    checks: list[TableCheck]
    offsets: dict[int, int]
    # Where the time went: fold (read, decode, fold, COPY), indexes, swap (catch-up, checksums, swap).
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def phases_text(self) -> str:
        """``fold 28.1 s, indexes 4.5 s, swap 3.3 s``: what the CLI and the benchmark print."""
        return ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in self.phases.items())


class ReplayRefused(RuntimeError):
    """The rebuilt tables differ from the live ones although the same code built both."""


class ReplayBusy(RuntimeError):
    """Another replay holds the lock."""


ProgressCallback = Callable[[ReplayProgress], None]


class Replay:
    def __init__(
        self,
        settings: Settings,
        names: list[str] | None = None,
        *,
        progress: ProgressCallback | None = None,
        segment_events: int | None = None,
        processes: int | None = None,
    ) -> None:
        self._settings = settings
        self._projections: list[Projection] = select(names)
        self._tables = [table for p in self._projections for table in p.tables]
        self._versions = {p.name: p.version for p in self._projections}
        self._progress = progress or (lambda _: None)
        self._workers = FoldWorkers(
            settings,
            self._tables,
            processes or settings.replay_processes,
            segment_events or settings.replay_segment_events,
        )
        self._events = 0
        self._phases: dict[str, float] = {}

    async def run(
        self,
        *,
        resume: bool = True,
        swap_in: bool = True,
        force: bool = False,
        wait: bool = False,
        adopt: bool = False,
        only_if_stale: bool = False,
    ) -> ReplayReport:
        """``adopt``: carry on with whatever the shadow schema holds, whichever versions built it (a rollback).
        ``only_if_stale``: do nothing when, by the time this replay holds the lock, the stored versions are this
        code's (another projector rebuilt them meanwhile)."""
        started = time.perf_counter()
        connection = await psycopg.AsyncConnection.connect(self._settings.database, autocommit=True)
        try:
            await self._lock(connection, wait)
            previous = await stored_versions(connection)
            if only_if_stale and all(previous.get(p) == v for p, v in self._versions.items()):
                return self._report(previous, started, False, swapped=False, comparable=False, checks=[])
            async with LogReader(self._settings, self._settings.job_events_topic) as reader:
                resumed = await self._prepare(connection, reader, resume, adopt)
                await self._build(connection, reader)
                if not swap_in:
                    return self._report(previous, started, resumed, swapped=False, comparable=False, checks=[])
                swapping = time.perf_counter()
                checks, comparable = await self._swap(connection, reader, previous, force)
                self._phases["swap"] = time.perf_counter() - swapping
            return self._report(previous, started, resumed, swapped=True, comparable=comparable, checks=checks)
        finally:
            self._workers.stop()
            await connection.close()

    async def _lock(self, connection: Connection, wait: bool) -> None:
        if wait:
            await connection.execute("SELECT pg_advisory_lock(%s)", (REPLAY_LOCK,))
            return
        cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (REPLAY_LOCK,))
        row = await cursor.fetchone()
        if not row or not row[0]:
            raise ReplayBusy("another replay is running against this database; wait for it or stop it first")

    async def _prepare(self, connection: Connection, reader: LogReader, resume: bool, adopt: bool) -> bool:
        """Starts the folding processes on a fresh shadow, or on the one an interrupted replay left."""
        state = await read_state(connection) if resume or adopt else None
        if state is not None and adopt and set(state.projections) == set(self._versions):
            self._versions = dict(state.projections)
        resumed = state is not None and state.projections == self._versions
        if resumed:
            assert state is not None
            log.info("replay resumes", projections=self._versions, offsets=state.offsets)
        else:
            async with connection.transaction():
                await create_shadow(connection, self._tables, self._versions)
        await self._workers.start(await reader.partitions(), state.offsets if resumed and state else None)
        return resumed

    def _report(
        self,
        previous: dict[str, int],
        started: float,
        resumed: bool,
        *,
        swapped: bool,
        comparable: bool,
        checks: list[TableCheck],
    ) -> ReplayReport:
        return ReplayReport(
            projections=self._versions,
            previous_versions={p: previous.get(p, 0) for p in self._versions},
            events=self._events,
            seconds=time.perf_counter() - started,
            resumed=resumed,
            swapped=swapped,
            comparable=comparable,
            checks=checks,
            offsets=dict(self._workers.offsets),
            phases=dict(self._phases),
        )

    async def _target(self, connection: Connection, reader: LogReader) -> Offsets:
        """Where the shadow should get to: the live projector's position while one runs, else the log's end."""
        if await group_has_members(self._settings, f"zixly-projector-{self._settings.projector_name}"):
            return await self._live_offsets(connection, reader)
        return await reader.end_offsets()

    async def _live_offsets(self, connection: Connection, reader: LogReader) -> Offsets:
        cursor = await connection.execute(
            "SELECT partition, next_offset FROM projection_checkpoints WHERE projection = %s AND topic = %s",
            (self._settings.projector_name, reader.topic),
        )
        stored = dict(await cursor.fetchall())
        beginning = await reader.beginning_offsets()
        return {p: stored.get(p, start) for p, start in beginning.items()}

    async def _advance(self, phase: str, targets: Offsets) -> None:
        before = dict(self._workers.offsets)
        targets = {p: max(t, before.get(p, 0)) for p, t in targets.items()}
        progress = ReplayProgress(phase, positions=before, targets=targets)
        progress.total = sum(targets[p] - before.get(p, 0) for p in targets)
        self._progress(progress)

        def moved(offsets: Offsets) -> None:
            progress.positions = offsets
            progress.done = sum(offsets[p] - before.get(p, 0) for p in offsets)
            self._progress(progress)

        reached = await self._workers.advance(targets, moved)
        self._events += sum(reached[p] - before.get(p, 0) for p in reached)

    def _gap(self, targets: Offsets) -> int:
        return sum(max(t - self._workers.offsets.get(p, 0), 0) for p, t in targets.items())

    async def _build(self, connection: Connection, reader: LogReader) -> None:
        folding = time.perf_counter()
        await self._advance("replaying", await self._target(connection, reader))
        for _ in range(20):
            target = await self._target(connection, reader)
            if self._gap(target) <= CATCH_UP_GAP:
                break
            await self._advance("catching up", target)
        self._phases["fold"] = time.perf_counter() - folding
        state = await read_state(connection)
        if state is not None and not state.indexed:
            indexing = time.perf_counter()
            self._progress(ReplayProgress("building indexes"))
            await self._build_indexes()
            await write_state(connection, ShadowState(self._versions, {}, indexed=True))
            self._phases["indexes"] = time.perf_counter() - indexing

    async def _build_indexes(self, connections: int = 3) -> None:
        """Every index of every table, a few at once on connections of their own, the slowest kinds first: one
        trigram index takes as long as all the b-trees together."""
        async with await psycopg.AsyncConnection.connect(self._settings.database, autocommit=True) as connection:
            statements = [s for table in self._tables for s in await missing_indexes(connection, table)]
        statements.sort(key=lambda item: " gin " not in item[1].as_string(None).lower())
        pending: asyncio.Queue[Statement] = asyncio.Queue()
        for _, statement in statements:
            pending.put_nowait(statement)

        async def build() -> None:
            async with await psycopg.AsyncConnection.connect(self._settings.database, autocommit=True) as builder:
                await builder.execute("SET maintenance_work_mem = '256MB'")
                while not pending.empty():
                    await builder.execute(pending.get_nowait())

        await asyncio.gather(*(build() for _ in range(connections)))
        async with await psycopg.AsyncConnection.connect(self._settings.database, autocommit=True) as connection:
            await connection.execute(f"ANALYZE {', '.join(f'{SHADOW}.{t}' for t in self._tables)}")

    async def _swap(
        self, connection: Connection, reader: LogReader, previous: dict[str, int], force: bool
    ) -> tuple[list[TableCheck], bool]:
        async with connection.transaction():
            # The live projector finishes its batch and waits here; readers go on reading the live tables.
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SWAP_LOCK,))
            live = await self._live_offsets(connection, reader)
            projector_running = await group_has_members(
                self._settings, f"zixly-projector-{self._settings.projector_name}"
            )
            await self._advance("swapping", live if projector_running else await reader.end_offsets())
            rebuilt = self._workers.offsets
            if set(job_stats.TABLES) <= set(self._tables):  # derived from the rebuilt jobs, now at the live position
                await job_stats.rebuild(connection, SHADOW)
            comparable = all(rebuilt.get(p, 0) == live[p] for p in live)
            live_sums = await table_checksums(connection, LIVE, self._tables)
            rebuilt_sums = await table_checksums(connection, SHADOW, self._tables)
            checks = [TableCheck(t, *live_sums[t], *rebuilt_sums[t]) for t in self._tables]
            same_code = all(previous.get(p) == v for p, v in self._versions.items())
            if comparable and same_code and not force and not all(check.matches for check in checks):
                differing = ", ".join(c.table for c in checks if not c.matches)
                raise ReplayRefused(
                    f"the rebuilt {differing} differ from the live tables although the same projection versions "
                    f"built both; the shadow is kept in schema {SHADOW} for inspection (swap anyway with --force)"
                )
            newest: dict[int, object] = {}
            if "job_events" in self._tables:
                cursor = await connection.execute(
                    f"SELECT log_partition, max(occurred_at) FROM {SHADOW}.job_events GROUP BY log_partition"
                )
                newest = dict(await cursor.fetchall())
            await swap(connection, self._tables, live)
            # Where the new tables stand; a projector that was behind re-applies the gap, which changes nothing.
            await connection.cursor().executemany(
                """INSERT INTO projection_checkpoints (projection, topic, partition, next_offset, updated_at,
                                                      last_event_at)
                   VALUES (%s, %s, %s, %s, now(), %s) ON CONFLICT (projection, topic, partition) DO UPDATE
                   SET next_offset = GREATEST(projection_checkpoints.next_offset, EXCLUDED.next_offset),
                       last_event_at = GREATEST(projection_checkpoints.last_event_at, EXCLUDED.last_event_at)""",
                [(self._settings.projector_name, reader.topic, p, o, newest.get(p)) for p, o in rebuilt.items()],
            )
        log.info(
            "replay swapped",
            projections=self._versions,
            offsets=rebuilt,
            comparable=comparable,
            matches={c.table: c.matches for c in checks},
        )
        return checks, comparable
