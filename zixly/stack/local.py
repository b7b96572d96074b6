"""The stack as a whole: bring up what is not external, create topics, migrate; report; stop."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from kernel.kafka import ensure_topics, wait_for_brokers, wait_for_kafka
from kernel.settings import Settings
from kernel.topics import project_topics
from read_model.migrate import provision_service_logins, upgrade
from zixly.stack.errors import StackError
from zixly.stack.kafka_broker import KafkaBroker
from zixly.stack.postgres_server import PostgresServer
from zixly.stack.s3_server import S3Server

Progress = Callable[[str], None]


@dataclass
class ComponentStatus:
    name: str
    state: str  # running | stopped | external
    address: str
    detail: str


class LocalStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.brokers = [KafkaBroker(settings, node) for node in range(1, settings.kafka_brokers + 1)]
        self.kafka = self.brokers[0]
        self.postgres = PostgresServer(settings)
        self.s3 = S3Server(settings)

    def up(
        self, progress: Progress = lambda _: None, dies_with_parent: bool = False, notice: Progress | None = None
    ) -> list[str]:
        """Bring everything up; returns the names of the servers this call started.

        ``progress`` hears each step (a spinner shows the latest), ``notice`` what the operator should still see
        afterwards (a stale pid file removed); without it, notices go to ``progress``.
        ``dies_with_parent``: the servers started now stop when this process dies, however it dies (``zixly up``).
        """
        started = []
        self._clear_stale_pid_files(notice or progress)
        if self.settings.runs_own_kafka:
            progress("Kafka: fetching broker jars (first run only)")
            self.kafka.fetch_jars()
            progress(f"Kafka: starting {len(self.brokers)} KRaft node(s) on {self.settings.kafka_bootstrap}")
            # All nodes first, then the wait: a node of a cluster serves only once a quorum of them runs.
            started += [broker.name for broker in self.brokers if broker.launch(dies_with_parent=dies_with_parent)]
            try:
                asyncio.run(wait_for_brokers(self.settings, len(self.brokers), timeout=120))
            except TimeoutError:
                for broker in self.brokers:
                    if broker.process is not None and broker.process.poll() is not None:
                        raise StackError(
                            f"Kafka node {broker.node} exited with {broker.process.returncode}; see {broker.log_path}"
                        ) from None
                raise
        else:
            progress(f"Kafka: using {self.settings.kafka_bootstrap}")
            asyncio.run(wait_for_kafka(self.settings, timeout=30))
        if self.settings.runs_own_postgres:
            progress(f"Postgres: starting on {self.postgres.status().address}")
            if self.postgres.start(dies_with_parent=dies_with_parent):
                started.append("postgres")
        else:
            progress("Postgres: using DATABASE_URL")
        if self.settings.runs_own_s3:
            if not self.s3.binary.exists():
                progress("S3: building the local endpoint (first run only)")
            progress(f"S3: starting the local endpoint on {self.s3.url}")
            if self.s3.start(dies_with_parent=dies_with_parent):
                started.append("s3")
        else:
            progress(f"S3: using {self.settings.s3_endpoint or 'AWS'}")
        progress("Kafka: creating topics")
        asyncio.run(ensure_topics(self.settings, project_topics(self.settings)))
        progress("Postgres: applying migrations")
        upgrade(self.settings)
        if self.settings.runs_own_postgres:
            progress("Postgres: letting the services' roles log in")
            provision_service_logins(self.settings)
        return started

    def _clear_stale_pid_files(self, progress: Progress) -> None:
        pidfiles = [(f"Kafka node {broker.node}", broker.pidfile) for broker in self.brokers]
        for name, pidfile in [*pidfiles, ("S3", self.s3.pidfile)]:
            if pidfile.stale():
                progress(f"{name}: removing a stale pid file ({pidfile.path}): pid {pidfile.read()} is not the server")
                pidfile.remove()

    def down(self, progress: Progress = lambda _: None) -> list[str]:
        stopped = []
        if self.settings.runs_own_s3:
            progress("S3: stopping")
            if self.s3.stop():
                stopped.append("s3")
        if self.settings.runs_own_postgres:
            progress("Postgres: stopping")
            if self.postgres.stop():
                stopped.append("postgres")
        if self.settings.runs_own_kafka:
            progress("Kafka: stopping")
            running = self._running_brokers()
            # Every node at once: the last node of a cluster to be asked would wait for a quorum already gone.
            for broker in running:
                broker.signal_stop()
            stopped += [broker.name for broker in running if broker.stop()]
        return stopped

    def _running_brokers(self) -> list[KafkaBroker]:
        """The configured nodes, and any other node of an earlier, larger cluster that still runs."""
        others = [KafkaBroker(self.settings, node) for node in range(len(self.brokers) + 1, 10)]
        return self.brokers + [broker for broker in others if broker.pidfile.alive_pid() is not None]

    def status(self) -> list[ComponentStatus]:
        rows = []
        if self.settings.runs_own_kafka:
            for broker in self.brokers:
                kafka = broker.status()
                rows.append(
                    ComponentStatus(
                        broker.name,
                        "running" if kafka.running else "stopped",
                        kafka.address,
                        f"pid {kafka.pid}, data {kafka.data_dir}" if kafka.running else f"data {kafka.data_dir}",
                    )
                )
        else:
            rows.append(ComponentStatus("kafka", "external", self.settings.kafka_bootstrap, ""))
        if self.settings.runs_own_postgres:
            pg = self.postgres.status()
            rows.append(
                ComponentStatus(
                    "postgres",
                    "running" if pg.running else "stopped",
                    pg.address,
                    f"pid {pg.pid}, v{pg.version}, data {pg.data_dir}" if pg.running else f"data {pg.data_dir}",
                )
            )
        else:
            rows.append(ComponentStatus("postgres", "external", _redact(self.settings.database), ""))
        if self.settings.runs_own_s3:
            s3 = self.s3.status()
            rows.append(
                ComponentStatus(
                    "s3",
                    "running" if s3.running else "stopped",
                    s3.address,
                    f"pid {s3.pid}, bucket {self.settings.s3_bucket}, data {s3.data}"
                    if s3.running
                    else f"data {s3.data}",
                )
            )
        else:
            rows.append(ComponentStatus("s3", "external", self.settings.s3_endpoint or "AWS", self.settings.s3_bucket))
        return rows


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
