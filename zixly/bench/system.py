"""The running system a benchmark drives: the receiver, a worker, the projector (and the notifier) as processes,
on a topic and a database of the benchmark's own, so that its numbers and rows touch nothing else."""

import asyncio
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from kernel.kafka import delete_topic, ensure_topics
from kernel.settings import Settings
from kernel.topics import TopicSpec
from read_model.migrate import upgrade
from zixly.bench.servers import UNLIMITED_TENANT, start_server
from zixly.stack.local import LocalStack
from zixly.stack.processes import terminate

RECEIVER_PORT, PROJECTOR_PORT, NOTIFIER_PORT, FIRST_WORKER_PORT = 18003, 18005, 18006, 18010


@dataclass(frozen=True)
class SystemUnderTest:
    settings: Settings
    """The stack's settings with the benchmark's topic and database."""
    url: str
    """Where generic jobs are posted."""
    pids: dict[str, int]
    """Each service's process (uvicorn's supervisor for the receiver)."""
    scratch_topic: str
    """A topic no service reads, for the baselines' raw records (in the services' topic they are undecodable)."""


def kept_database(settings: Settings, bench: Settings) -> None:
    """Creates ``bench``'s database on ``settings``' server unless it exists (a benchmark keeps its seeded data for
    later runs), and brings its schema up to date."""
    name = bench.database.rsplit("/", 1)[1]
    with psycopg.connect(settings.database, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            connection.execute(f"CREATE DATABASE {name}")
    upgrade(bench)


@contextmanager
def bench_database(settings: Settings) -> Iterator[Settings]:
    name = f"zixly_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(settings.database, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        own = settings.replaced(database_url=settings.database_named(name))
        upgrade(own)
        yield own
    finally:
        with psycopg.connect(settings.database, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def system_under_test(
    settings: Settings, logs: Path, workers: int = 1, notifier: bool = False
) -> Iterator[SystemUnderTest]:
    LocalStack(settings).up()
    topic = f"bench.system.{uuid.uuid4().hex[:8]}"
    scratch = f"{topic}.baseline"
    asyncio.run(ensure_topics(settings, [TopicSpec(name, settings.topic_partitions) for name in (topic, scratch)]))
    try:
        with bench_database(settings.replaced(job_events_topic=topic)) as own:
            env = {
                "ZIXLY_JOB_EVENTS_TOPIC": topic,
                "ZIXLY_DATABASE_URL": own.database,
                "ZIXLY_LOG_LEVEL": "WARNING",
                "ZIXLY_RECEIVER_PORT": str(RECEIVER_PORT),
                **UNLIMITED_TENANT,
            }
            zixly = [sys.executable, "-m", "zixly"]
            services = {
                "receiver": (["receiver"], f"http://127.0.0.1:{RECEIVER_PORT}/health"),
                "projector": (
                    ["projector", "--metrics-port", str(PROJECTOR_PORT)],
                    f"http://127.0.0.1:{PROJECTOR_PORT}/metrics",
                ),
            }
            for index in range(workers):
                port = FIRST_WORKER_PORT + index
                services[f"worker-{index + 1}"] = (
                    ["worker", "--metrics-port", str(port)],
                    f"http://127.0.0.1:{port}/metrics",
                )
            if notifier:
                services["notifier"] = (
                    ["notifier", "--metrics-port", str(NOTIFIER_PORT)],
                    f"http://127.0.0.1:{NOTIFIER_PORT}/metrics",
                )
            pids: dict[str, int] = {}
            try:
                for name, (args, ready) in services.items():
                    pids[name] = start_server([*zixly, *args], ready, logs / f"system-{name}.log", env)
                yield SystemUnderTest(own, f"http://127.0.0.1:{RECEIVER_PORT}/webhook/generic-job", pids, scratch)
            finally:
                for pid in pids.values():
                    terminate(pid, timeout=20)
    finally:
        for name in (topic, scratch):
            asyncio.run(delete_topic(settings, name))
