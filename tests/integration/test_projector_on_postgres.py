"""The projector against the real broker and Postgres: batches with offsets in one transaction."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from kernel.kafka import ensure_topics, make_consumer, make_producer
from kernel.log_reader import LogRecord
from kernel.producer_connection import ProducerConnection
from kernel.publisher import KafkaEventPublisher
from kernel.settings import Settings
from kernel.topics import TopicSpec
from projections.main import build_service
from projections.postgres_store import PostgresProjectionStore
from projections.projector import Projector
from schemas.events import Event
from tests.builders import job_lifecycle

PARTITIONS = 3


@pytest.fixture
async def topic_settings(stack: Settings) -> Settings:
    """A topic and projection name of this test's own, so its rows and checkpoints are its alone."""
    name = f"test.projector.{uuid.uuid4().hex[:10]}"
    settings = stack.model_copy(update={"job_events_topic": name, "projector_name": name[-24:]})
    await ensure_topics(settings, [TopicSpec(name, PARTITIONS)])
    return settings


@pytest.fixture
async def publish(topic_settings: Settings) -> AsyncIterator[KafkaEventPublisher]:
    connection = ProducerConnection(lambda: make_producer(topic_settings))
    await connection.start()
    yield KafkaEventPublisher(connection, topic_settings.job_events_topic, 10)
    await connection.stop()


async def publish_jobs(publisher: KafkaEventPublisher, tenant: str, jobs: int) -> list[Event]:
    events = [event for _ in range(jobs) for event in job_lifecycle(tenant)]
    for event in events:
        await publisher.publish(event)
    return events


async def run_projector_until(settings: Settings, tenant: str, expected_events: int) -> None:
    service, store = build_service(settings)
    task = asyncio.create_task(service.run())
    try:
        for _ in range(300):
            if event_count(settings, tenant) >= expected_events:
                return
            if task.done():
                task.result()
            await asyncio.sleep(0.1)
        raise AssertionError(f"projector applied {event_count(settings, tenant)} of {expected_events} events")
    finally:
        service.stop()
        await task
        await store.close()


def event_count(settings: Settings, tenant: str) -> int:
    with psycopg.connect(settings.database) as connection:
        row = connection.execute("SELECT count(*) FROM job_events WHERE tenant_id = %s", (tenant,)).fetchone()
    return int(row[0]) if row else 0


def snapshot(settings: Settings, tenant: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with psycopg.connect(settings.database) as connection:
        jobs = connection.execute("SELECT * FROM pipeline_jobs WHERE tenant_id = %s ORDER BY id", (tenant,)).fetchall()
        events = connection.execute(
            "SELECT * FROM job_events WHERE tenant_id = %s ORDER BY event_id", (tenant,)
        ).fetchall()
    return jobs, events


def checkpoints(settings: Settings) -> dict[int, int]:
    with psycopg.connect(settings.database) as connection:
        rows = connection.execute(
            "SELECT partition, next_offset FROM projection_checkpoints WHERE projection = %s",
            (settings.projector_name,),
        ).fetchall()
    return dict(rows)


async def test_the_projector_builds_every_job_and_checkpoints_the_log_end(
    topic_settings: Settings, publish: KafkaEventPublisher
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = await publish_jobs(publish, tenant, 200)
    await run_projector_until(topic_settings, tenant, len(events))
    jobs, stored_events = snapshot(topic_settings, tenant)
    assert len(jobs) == 200
    assert {row[3] for row in jobs} == {"COMPLETED"}
    assert len(stored_events) == 600
    assert sum(checkpoints(topic_settings).values()) == 600


async def test_a_restarted_projector_resumes_without_loss_or_duplicates(
    topic_settings: Settings, publish: KafkaEventPublisher
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    first = await publish_jobs(publish, tenant, 50)
    await run_projector_until(topic_settings, tenant, len(first))
    second = await publish_jobs(publish, tenant, 50)  # arrive while the projector is down
    await run_projector_until(topic_settings, tenant, len(first) + len(second))
    await asyncio.sleep(0.5)  # a duplicate would land now, if there were one
    jobs, stored_events = snapshot(topic_settings, tenant)
    assert len(jobs) == 100
    assert {row[3] for row in jobs} == {"COMPLETED"}
    assert len(stored_events) == 300
    assert sum(checkpoints(topic_settings).values()) == 300


async def read_whole_topic(settings: Settings) -> list[LogRecord]:
    consumer = make_consumer(settings, settings.job_events_topic, group_id=None)
    await consumer.start()
    try:
        records: list[LogRecord] = []
        end = await consumer.end_offsets(list(consumer.assignment()))
        while sum(end.values()) > len(records):
            fetched = await consumer.getmany(timeout_ms=1000)
            records += [LogRecord(r.topic, r.partition, r.offset, r.value) for batch in fetched.values() for r in batch]
        return records
    finally:
        await consumer.stop()


async def test_a_redelivered_batch_leaves_the_tables_unchanged(
    topic_settings: Settings, publish: KafkaEventPublisher
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = await publish_jobs(publish, tenant, 30)
    await run_projector_until(topic_settings, tenant, len(events))
    before = snapshot(topic_settings, tenant)
    records = await read_whole_topic(topic_settings)
    assert len(records) == len(events)

    store = PostgresProjectionStore(topic_settings.database, topic_settings.projector_name)
    try:
        projector = Projector(store)
        await projector.load_checkpoints(topic_settings.job_events_topic)
        outcome = await projector.apply(records)
        assert outcome.applied == 0
        assert snapshot(topic_settings, tenant) == before

        # Even with its checkpoints lost, the projector recognises every event as applied.
        with psycopg.connect(topic_settings.database) as connection:
            connection.execute(
                "DELETE FROM projection_checkpoints WHERE projection = %s", (topic_settings.projector_name,)
            )
        outcome = await Projector(store).apply(records)
        assert outcome.applied == 0
        assert snapshot(topic_settings, tenant) == before
    finally:
        await store.close()
