"""``zixly bench replay``: rebuilding the read model from N synthetic events, next to a raw COPY of the same rows.

The log is generated once per (N, seed) into a topic of its own and kept for later runs; the read model is a
database of its own, dropped at the end. Each round replays the whole log (fresh shadow, verify, swap), then
times the baseline: the very rows the replay wrote, already in memory as COPY-ready tuples, copied with psycopg into
empty tables of the same shape and then given the same indexes. From the second round on the replay verifies
itself against the previous round's tables (same code, same offsets: the checksums must match).
"""

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kernel.kafka import ensure_topics
from kernel.log_reader import LogReader
from kernel.settings import Settings
from kernel.topics import TopicSpec
from projections.catalogue import select
from projections.replay import Replay, ReplayReport
from projections.shadow import LIVE
from read_model.migrate import upgrade
from zixly.stack.local import LocalStack
from zixly.synthetic_events import append_synthetic

BASELINE_SCHEMA = "bench_raw_copy"


@dataclass
class Round:
    replay: ReplayReport
    copy_seconds: float
    index_seconds: float
    rows: int


def _bench_settings(settings: Settings, events: int, seed: int, database: str) -> Settings:
    return settings.replaced(
        database_url=settings.database_named(database), job_events_topic=f"zixly.bench-replay-{events}-{seed}"
    )


async def _events_in(settings: Settings) -> int:
    async with LogReader(settings, settings.job_events_topic) as reader:
        ends, starts = await reader.end_offsets(), await reader.beginning_offsets()
    return sum(ends[p] - starts[p] for p in ends)


async def _raw_copy(settings: Settings, tables: list[str]) -> tuple[float, float, int]:
    """Seconds to COPY the live tables' rows into empty tables, seconds to index them, and the rows."""
    async with await psycopg.AsyncConnection.connect(settings.database, autocommit=True) as connection:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for table in tables:
            cursor = await connection.execute(f"SELECT * FROM {LIVE}.{table}")
            rows[table] = [
                tuple(orjson.dumps(v).decode() if isinstance(v, dict | list) else v for v in row)
                for row in await cursor.fetchall()
            ]
        await connection.execute(f"DROP SCHEMA IF EXISTS {BASELINE_SCHEMA} CASCADE")
        await connection.execute(f"CREATE SCHEMA {BASELINE_SCHEMA}")
        for table in tables:
            await connection.execute(f"CREATE TABLE {BASELINE_SCHEMA}.{table} (LIKE {LIVE}.{table})")
        started = time.perf_counter()
        async with connection.transaction(), connection.cursor() as cursor:
            for table, table_rows in rows.items():
                async with cursor.copy(f"COPY {BASELINE_SCHEMA}.{table} FROM STDIN") as copy:
                    for row in table_rows:
                        await copy.write_row(row)
        copied = time.perf_counter() - started
        started = time.perf_counter()
        await connection.execute("SET maintenance_work_mem = '256MB'")
        for table in tables:
            cursor = await connection.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s", (LIVE, table)
            )
            for (definition,) in await cursor.fetchall():
                # The same index in the baseline's schema (index names are per schema, so they may stay).
                await connection.execute(definition.replace(f" ON {LIVE}.", f" ON {BASELINE_SCHEMA}."))
        indexed = time.perf_counter() - started
        await connection.execute(f"DROP SCHEMA {BASELINE_SCHEMA} CASCADE")
        return copied, indexed, sum(len(r) for r in rows.values())


def run_replay_benchmark(
    settings: Settings, console: Console, events: int, rounds: int, seed: int, processes: int | None
) -> None:
    with console.status("starting the stack"):
        LocalStack(settings).up()
    database = f"zixly_bench_{uuid.uuid4().hex[:8]}"
    bench = _bench_settings(settings, events, seed, database)
    with psycopg.connect(settings.database, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {database}")
    try:
        upgrade(bench)
        asyncio.run(ensure_topics(bench, [TopicSpec(bench.job_events_topic, bench.topic_partitions)]))
        if asyncio.run(_events_in(bench)) < events:
            with Progress(
                TextColumn("generating the log"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("generating", total=events)
                asyncio.run(append_synthetic(bench, events, seed, lambda n: progress.update(task, completed=n)))
        logged = asyncio.run(_events_in(bench))
        tables = [t for p in select(None) for t in p.tables]
        results: list[Round] = []
        for number in range(1, rounds + 1):
            with console.status(f"round {number}/{rounds}: replaying {logged:,} events"):
                report = asyncio.run(Replay(bench, processes=processes).run(resume=False, force=True))
            with console.status(f"round {number}/{rounds}: raw COPY of the same rows"):
                copied, indexed, rows = asyncio.run(_raw_copy(bench, tables))
            results.append(Round(report, copied, indexed, rows))
            verified = (
                "matches"
                if report.comparable and all(c.matches for c in report.checks)
                else ("differs" if report.comparable else "not comparable (first round)")
            )
            console.print(
                f"round {number}: replay {report.seconds:.1f} s ({report.phases_text}), raw COPY "
                f"{copied:.1f} s + indexes {indexed:.1f} s; verification {verified}"
            )
        _print_table(console, results, logged)
    finally:
        with psycopg.connect(settings.database, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def _print_table(console: Console, results: list[Round], events: int) -> None:
    replay = statistics.median(r.replay.seconds for r in results)
    copy = statistics.median(r.copy_seconds for r in results)
    copy_indexed = statistics.median(r.copy_seconds + r.index_seconds for r in results)
    rows = results[0].rows
    table = Table(title=f"replay of {events:,} events into {rows:,} rows; medians of {len(results)} round(s)")
    for column in ("what", "seconds", "events/s", "rows/s", "speed vs raw COPY"):
        table.add_column(column, justify="left" if column == "what" else "right")
    table.add_row(
        "zixly replay (read, decode, fold, COPY, index, verify, swap)",
        f"{replay:.1f}",
        f"{events / replay:,.0f}",
        f"{rows / replay:,.0f}",
        f"{copy / replay:.2f}x",
    )
    table.add_row("raw COPY of the same rows (baseline)", f"{copy:.1f}", "", f"{rows / copy:,.0f}", "1.00x")
    table.add_row(
        "raw COPY + the same indexes",
        f"{copy_indexed:.1f}",
        "",
        f"{rows / copy_indexed:,.0f}",
        f"{copy / copy_indexed:.2f}x",
    )
    console.print(table)
    console.print(
        f"target (DESIGN.md): 1,000,000 events in < 25 s and >= 0.40x a raw COPY; this run: "
        f"{replay:.1f} s for {events:,} events, {copy / replay:.2f}x"
    )
