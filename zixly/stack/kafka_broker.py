"""A single-node Apache Kafka 3.9 broker in KRaft mode, run from jars that Maven fetches once."""

import asyncio
import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from kernel.kafka import wait_for_kafka
from kernel.settings import Settings
from zixly.stack.processes import PidFile, spawn, terminate

KAFKA_VERSION = "3.9.1"
POM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"


@dataclass
class BrokerStatus:
    running: bool
    pid: int | None
    address: str
    data_dir: Path


class KafkaBroker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.home / "kafka"
        self.data_dir = self.root / "data"
        self.libs = settings.cache / f"kafka-{KAFKA_VERSION}" / "libs"
        self.pidfile = PidFile(settings.home / "run" / "kafka.pid")
        self.log_path = settings.home / "logs" / "kafka.log"

    def status(self) -> BrokerStatus:
        return BrokerStatus(
            running=self.pidfile.alive_pid() is not None,
            pid=self.pidfile.alive_pid(),
            address=f"127.0.0.1:{self.settings.kafka_port}",
            data_dir=self.data_dir,
        )

    def fetch_jars(self) -> bool:
        """Resolve the broker jars from Maven Central into the cache; False when they were already there."""
        marker = self.libs / ".complete"
        if marker.exists():
            return False
        if shutil.which("mvn") is None:
            raise RuntimeError("Maven (mvn) is needed to fetch the Kafka jars: apt-get install maven")
        if not POM.is_file():
            raise RuntimeError(f"the broker POM is missing: {POM}")
        self.libs.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mvn", "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
                "-DincludeScope=runtime", f"-DoutputDirectory={self.libs}",
            ],
            check=True,
        )  # fmt: skip
        marker.touch()
        return True

    def _java(self, *args: str) -> list[str]:
        return [
            "java",
            *[a for a in args if a.startswith("-D")],
            "-cp",
            f"{self.libs}/*",
            *[a for a in args if not a.startswith("-D")],
        ]

    def _write_config(self) -> Path:
        s = self.settings
        self.root.mkdir(parents=True, exist_ok=True)
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(s.topic_partitions),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics are the project's to create, with their partitions and configs; a typo must not make one.
            "auto.create.topics.enable": "false",
            # Faust changelogs need compaction; a smaller dedupe buffer keeps the heap at 512 MB.
            "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
        }
        config = self.root / "server.properties"
        config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        (self.root / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.kafka.server.BrokerServer=INFO\n"
        )
        return config

    def _format_storage(self, config: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        subprocess.run(
            self._java(
                f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
                "-g",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> bool:
        """Start the broker unless it runs; wait until it serves metadata. False when it already ran."""
        if self.pidfile.alive_pid() is not None:
            asyncio.run(wait_for_kafka(self.settings, timeout=60))
            return False
        if shutil.which("java") is None:
            raise RuntimeError("Java 17 is needed to run Kafka: apt-get install openjdk-17-jre-headless")
        self.fetch_jars()
        config = self._write_config()
        self._format_storage(config)
        heap = self.settings.kafka_heap
        process = spawn(
            [
                "java", f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
                f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}",
                f"-Dkafka.logs.dir={self.settings.home / 'logs'}",
                "-cp", f"{self.libs}/*", "kafka.Kafka", str(config),
            ],
            self.log_path,
        )  # fmt: skip
        self.pidfile.write(process.pid)
        try:
            asyncio.run(wait_for_kafka(self.settings, timeout=90))
        except TimeoutError:
            if process.poll() is not None:
                raise RuntimeError(f"Kafka exited with {process.returncode}; see {self.log_path}") from None
            raise
        return True

    def stop(self) -> bool:
        pid = self.pidfile.alive_pid()
        if pid is None:
            self.pidfile.remove()
            return False
        terminate(pid, timeout=60)
        self.pidfile.remove()
        return True


def new_cluster_id() -> str:
    """A KRaft cluster id: a URL-safe base64 UUID, as StorageTool random-uuid makes (which would cost a JVM start).

    Like Kafka's own ``Uuid.randomUuid``, it never starts with "-": StorageTool would read such an id as an option
    and refuse to format (1 stack in 64 failed to start, seen in CI).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
