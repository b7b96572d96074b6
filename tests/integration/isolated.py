"""A read model and a log of a test's own: a fresh database (migrated) and a fresh topic on the test stack.

Replays swap whole tables, so tests that replay must not share the stack's database with the other tests.
"""

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer

from kernel.kafka import ensure_topics, make_producer
from kernel.log_reader import LogReader, LogRecord
from kernel.settings import Settings
from kernel.topics import TopicSpec
from projections.catalogue import PROJECTIONS
from projections.postgres_store import PostgresProjectionStore
from projections.projector import Projector
from read_model.migrate import upgrade
from schemas.codec import EVENT_TYPE_HEADER


@contextmanager
def isolated_read_model(stack: Settings, partitions: int = 3) -> Iterator[Settings]:
    name = f"zixly_t_{uuid.uuid4().hex[:10]}"
    admin_dsn = stack.database
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    settings = stack.replaced(
        database_url=stack.database_named(name),
        topic_partitions=partitions,
        job_events_topic=f"zixly.{name.replace('_', '-')}",
        projector_name="jobs",
    )
    try:
        upgrade(settings)
        asyncio.run(ensure_topics(settings, [TopicSpec(settings.job_events_topic, partitions)]))
        yield settings
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def record_code_versions(settings: Settings) -> None:
    """As a projector of this code does before it projects: the tables are this code's."""
    with psycopg.connect(settings.database, autocommit=True) as connection:
        for projection in PROJECTIONS.values():
            connection.execute(
                "UPDATE projection_versions SET version = %s WHERE projection = %s",
                (projection.version, projection.name),
            )


def append_lines(settings: Settings, path: Path) -> int:
    """Appends a JSON-lines log (``partition``, ``key``, ``value``) to the settings' topic, each to its partition."""

    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    async def run() -> int:
        producer: AIOKafkaProducer = make_producer(settings)
        await producer.start()
        try:
            for line in lines:
                value: dict[str, Any] = line["value"]
                headers = [
                    (name, str(value[name]).encode())
                    for name in ("event_type", "schema_version", "tenant_id")
                    if name in value
                ]
                await producer.send_and_wait(
                    settings.job_events_topic,
                    json.dumps(value).encode(),
                    key=line["key"].encode(),
                    partition=line["partition"],
                    headers=headers,
                )
            return len(lines)
        finally:
            await producer.stop()

    return asyncio.run(run())


def table_contents(settings: Settings, tables: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Each table's rows as JSON-ready dicts, in the given order (``table → ORDER BY``)."""
    contents: dict[str, list[dict[str, Any]]] = {}
    with psycopg.connect(settings.database) as connection:
        for table, order in tables.items():
            cursor = connection.execute(f"SELECT * FROM {table} ORDER BY {order}")
            names = [column.name for column in cursor.description or ()]
            contents[table] = [
                json.loads(json.dumps(dict(zip(names, row, strict=True)), default=str)) for row in cursor.fetchall()
            ]
    return contents


GOLDEN = Path(__file__).resolve().parents[1] / "golden"


async def project_live(settings: Settings) -> None:
    """What the live projector does with the log, batch by batch, through the same store it uses."""
    store = PostgresProjectionStore(settings.database, settings.projector_name)
    projector = Projector(store)
    try:
        async with LogReader(settings, settings.job_events_topic) as reader:
            starts, ends = await reader.beginning_offsets(), await reader.end_offsets()
            async for batch in reader.read(starts, ends, max_records=5):
                await projector.apply(
                    [LogRecord(settings.job_events_topic, r.partition, r.offset, r.value, r.headers) for r in batch]
                )
    finally:
        await store.close()


@contextmanager
def golden_read_model(stack: Settings) -> Iterator[Settings]:
    """A read model of its own holding the committed golden log, projected as the live projector does."""
    with isolated_read_model(stack) as settings:
        append_lines(settings, GOLDEN / "events.jsonl")
        record_code_versions(settings)
        asyncio.run(project_live(settings))
        yield settings


def records_in_the_log(settings: Settings) -> Counter[tuple[bytes, str]]:
    """How many records of each event type each job key has in the whole topic (duplicates included: the read
    model's job_events would fold records with the same event id into one)."""

    async def count() -> Counter[tuple[bytes, str]]:
        found: Counter[tuple[bytes, str]] = Counter()
        async with LogReader(settings, settings.job_events_topic) as reader:
            starts, ends = await reader.beginning_offsets(), await reader.end_offsets()
            async for batch in reader.read(starts, ends):
                for record in batch:
                    if record.key is not None:
                        found[(record.key, dict(record.headers).get(EVENT_TYPE_HEADER, b"").decode())] += 1
        return found

    return asyncio.run(count())
