"""Apache Kafka brokers in KRaft mode, run from jars that Maven fetches once: one node, or a replicated cluster.

The release is ``ZIXLY_KAFKA_VERSION`` (the 3.9 and 4.x lines are tested; 4.0 moved the broker to Log4j 2).

Node 1 listens on ``kafka_port`` (its controller on ``kafka_controller_port``) and keeps its data in
``<home>/kafka``; node N of a cluster on the ports 2(N-1) above those, in ``<home>/kafka-N``. Every node is both
broker and controller, so three nodes keep a quorum with one of them down.
"""

import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from kernel.kafka import wait_for_kafka
from kernel.settings import Settings
from zixly.stack.errors import StackError
from zixly.stack.kafka_tls import ensure_broker_tls
from zixly.stack.ports import WantedPort, ensure_free
from zixly.stack.processes import PidFile, spawn, terminate

POM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"


@dataclass
class BrokerStatus:
    running: bool
    pid: int | None
    address: str
    data_dir: Path


class KafkaBroker:
    def __init__(self, settings: Settings, node: int = 1) -> None:
        self.settings = settings
        self.node = node
        suffix = "" if node == 1 else f"-{node}"
        self.cluster_root = settings.home / "kafka"  # node 1's folder holds what the cluster shares: id, TLS
        self.root = settings.home / f"kafka{suffix}"
        self.data_dir = self.root / "data"
        self.version = settings.kafka_version
        self.log4j2 = int(self.version.split(".")[0]) >= 4  # 4.0 moved from reload4j to Log4j 2
        self.libs = settings.cache / f"kafka-{self.version}" / "libs"
        self.pidfile = PidFile(settings.home / "run" / f"kafka{suffix}.pid", command="kafka.Kafka")
        self.log_path = settings.home / "logs" / f"kafka{suffix}.log"
        self.port = settings.kafka_port + 2 * (node - 1)
        self.controller_port = settings.kafka_controller_port + 2 * (node - 1)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return "kafka" if self.node == 1 else f"kafka-{self.node}"

    def status(self) -> BrokerStatus:
        return BrokerStatus(
            running=self.pidfile.alive_pid() is not None,
            pid=self.pidfile.alive_pid(),
            address=f"127.0.0.1:{self.port}",
            data_dir=self.data_dir,
        )

    def fetch_jars(self) -> bool:
        """Resolve the broker jars from Maven Central into the cache; False when they were already there."""
        marker = self.libs / ".complete"
        if marker.exists():
            return False
        if shutil.which("mvn") is None:
            raise StackError("Maven (mvn) is needed to fetch the Kafka jars: apt-get install maven")
        if not POM.is_file():
            raise StackError(f"the broker POM is missing: {POM}")
        self.libs.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={self.libs}",
                f"-Dkafka.version={self.version}",
                *(["-Dkafka4"] if self.log4j2 else []),
            ],
            check=True,
        )
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
        nodes = range(1, s.kafka_brokers + 1)
        replicas = str(min(3, s.kafka_brokers))
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(self.node),
            "controller.quorum.voters": ",".join(
                f"{node}@127.0.0.1:{s.kafka_controller_port + 2 * (node - 1)}" for node in nodes
            ),
            # Clients and the broker itself use one listener, with the protocol the settings give every client.
            "listeners": f"CLIENT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "CLIENT",
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,CLIENT:{s.kafka_security_protocol}",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(s.topic_partitions),
            # Consumer groups' offsets and transactions' state are replicated like the project's topics.
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": "2" if s.kafka_brokers >= 3 else "1",
            "default.replication.factor": replicas,
            "min.insync.replicas": "2" if s.kafka_brokers >= 3 else "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics are the project's to create, with their partitions and configs; a typo must not make one.
            "auto.create.topics.enable": "false",
            # Faust changelogs need compaction; a smaller dedupe buffer keeps the heap at 512 MB.
            "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
        } | self._security()
        config = self.root / "server.properties"
        config.touch(mode=0o600, exist_ok=True)
        config.chmod(0o600)  # it may hold the SCRAM password and the keystore's
        config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        self._write_logging_config()
        return config

    def _write_logging_config(self) -> None:
        """Warnings and the broker's start and stop, to stdout (the node's log file)."""
        if self.log4j2:
            self.logging_config.write_text(
                "status = warn\n"
                "appender.stdout.type = Console\n"
                "appender.stdout.name = STDOUT\n"
                "appender.stdout.layout.type = PatternLayout\n"
                "appender.stdout.layout.pattern = [%d] %p %m (%c)%n\n"
                "rootLogger.level = WARN\n"
                "rootLogger.appenderRef.stdout.ref = STDOUT\n"
                "logger.broker.name = kafka.server.BrokerServer\n"
                "logger.broker.level = INFO\n"
            )
            return
        self.logging_config.write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.kafka.server.BrokerServer=INFO\n"
        )

    @property
    def logging_config(self) -> Path:
        return self.root / ("log4j2.properties" if self.log4j2 else "log4j.properties")

    @property
    def _logging_option(self) -> str:
        option = "log4j2.configurationFile" if self.log4j2 else "log4j.configuration"
        return f"-D{option}=file:{self.logging_config}"

    def _security(self) -> dict[str, str]:
        """TLS with the stack's own CA and SCRAM with the settings' user, as the settings' protocol asks."""
        s = self.settings
        properties: dict[str, str] = {}
        if s.kafka_uses_tls:
            tls = ensure_broker_tls(self.cluster_root / "tls")
            properties |= {
                "listener.name.client.ssl.keystore.type": "PKCS12",
                "listener.name.client.ssl.keystore.location": str(tls.keystore),
                "listener.name.client.ssl.keystore.password": tls.password,
                "listener.name.client.ssl.key.password": tls.password,
                "listener.name.client.ssl.truststore.type": "PEM",
                "listener.name.client.ssl.truststore.location": str(tls.ca_file),
            }
        if s.kafka_uses_sasl:
            username, password = self._scram_user()
            mechanism = s.kafka_sasl_mechanism.lower()
            login = "org.apache.kafka.common.security.scram.ScramLoginModule required"
            properties |= {
                "sasl.enabled.mechanisms": s.kafka_sasl_mechanism,
                "sasl.mechanism.inter.broker.protocol": s.kafka_sasl_mechanism,
                # The broker logs in to itself as the same user: one credential for the whole local stack.
                f"listener.name.client.{mechanism}.sasl.jaas.config": (
                    f'{login} username="{username}" password="{password}";'
                ),
            }
        return properties

    def _scram_user(self) -> tuple[str, str]:
        s = self.settings
        if s.kafka_sasl_mechanism == "PLAIN":
            raise StackError("the local broker serves SCRAM: set ZIXLY_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 (or -256)")
        assert s.kafka_sasl_username is not None
        assert s.kafka_sasl_password is not None
        username, password = s.kafka_sasl_username, s.kafka_sasl_password.get_secret_value()
        for name, value in (("USERNAME", username), ("PASSWORD", password)):
            # Written into the broker's JAAS line and StorageTool's --add-scram argument, which quote nothing.
            if not re.fullmatch(r"[A-Za-z0-9._~-]+", value):
                raise StackError(f"ZIXLY_KAFKA_SASL_{name} of the local broker may hold letters, digits and ._~- only")
        return username, password

    def _format_storage(self, config: Path) -> None:
        scram_marker = self.root / "scram-user"
        wanted = self._scram_marker()
        brokers_marker = self.root / "brokers"
        if (self.data_dir / "meta.properties").exists():
            had_brokers = int(brokers_marker.read_text()) if brokers_marker.exists() else 1
            if had_brokers != self.settings.kafka_brokers:
                raise StackError(
                    f"the local log in {self.data_dir} belongs to a cluster of {had_brokers} broker(s), not "
                    f"{self.settings.kafka_brokers}: stop the stack and remove {self.settings.home}/kafka* to start an "
                    f"empty log, or set ZIXLY_KAFKA_BROKERS={had_brokers}"
                )
            version_marker = self.root / "kafka-version"
            formatted_by = version_marker.read_text() if version_marker.exists() else "3.9.1"
            if _release(formatted_by) > _release(self.version):
                raise StackError(
                    f"the local log in {self.data_dir} was written by Kafka {formatted_by}, which {self.version} "
                    f"cannot read: set ZIXLY_KAFKA_VERSION={formatted_by}, or stop the stack and remove "
                    f"{self.settings.home}/kafka* to start an empty log"
                )
            version_marker.write_text(self.version)
            had = scram_marker.read_text() if scram_marker.exists() else ""
            if had != wanted:
                raise StackError(
                    f"the local broker's data in {self.data_dir} was formatted for another SASL user or protocol "
                    f"({had or 'none'}, now {wanted or 'none'}): KRaft takes SCRAM users when it formats its storage; "
                    "stop the stack and remove that folder to start an empty log with the new user"
                )
            return
        cluster_id = self._cluster_id()
        scram = []
        if self.settings.kafka_uses_sasl:
            username, password = self._scram_user()
            scram = ["--add-scram", f"{self.settings.kafka_sasl_mechanism}=[name={username},password={password}]"]
        subprocess.run(
            self._java(
                self._logging_option,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
                "-g",
                *scram,
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        scram_marker.write_text(wanted)
        brokers_marker.write_text(str(self.settings.kafka_brokers))
        (self.root / "kafka-version").write_text(self.version)

    def _cluster_id(self) -> str:
        """One id for every node of the cluster, made by whichever node formats first."""
        id_file = self.cluster_root / "cluster-id"
        if not id_file.exists():
            self.cluster_root.mkdir(parents=True, exist_ok=True)
            id_file.write_text(new_cluster_id())
        return id_file.read_text().strip()

    def _scram_marker(self) -> str:
        """Which SCRAM user the storage was formatted with (not the password: that is checked at login)."""
        s = self.settings
        return f"{s.kafka_sasl_mechanism}:{s.kafka_sasl_username}" if s.kafka_uses_sasl else ""

    def start(self, dies_with_parent: bool = False) -> bool:
        """Start the broker unless it runs; wait until it serves metadata. False when it already ran.

        ``dies_with_parent``: the broker stops (cleanly, on SIGTERM) when this process dies, however it dies.
        """
        launched = self.launch(dies_with_parent)
        self.wait_until_serving(90 if launched else 60)
        return launched

    def wait_until_serving(self, timeout: float) -> None:
        try:
            asyncio.run(wait_for_kafka(self.settings, timeout=timeout))
        except TimeoutError:
            if self.process is not None and self.process.poll() is not None:
                raise StackError(
                    f"Kafka node {self.node} exited with {self.process.returncode}; see {self.log_path}"
                ) from None
            raise

    def launch(self, dies_with_parent: bool = False) -> bool:
        """Start the broker's process unless it runs, without waiting for it (a cluster's nodes wait for each
        other's quorum). False when it already ran."""
        if self.pidfile.alive_pid() is not None:
            return False
        if shutil.which("java") is None:
            raise StackError("Java 17 is needed to run Kafka: apt-get install openjdk-17-jre-headless")
        ensure_free(
            [
                WantedPort(self.port, f"Kafka node {self.node}", "ZIXLY_KAFKA_PORT"),
                WantedPort(self.controller_port, f"Kafka node {self.node}'s controller", "ZIXLY_KAFKA_CONTROLLER_PORT"),
            ]
        )
        self.fetch_jars()
        config = self._write_config()
        self._format_storage(config)
        heap = self.settings.kafka_heap
        process = spawn(
            [
                "java",
                f"-Xms{heap}",
                f"-Xmx{heap}",
                "-XX:+UseG1GC",
                "-XX:+ExitOnOutOfMemoryError",
                self._logging_option,
                f"-Dkafka.logs.dir={self.settings.home / 'logs'}",
                "-cp",
                f"{self.libs}/*",
                "kafka.Kafka",
                str(config),
            ],
            self.log_path,
            dies_with_parent=signal.SIGTERM if dies_with_parent else None,
        )
        self.pidfile.write(process.pid)
        self.process = process
        return True

    def signal_stop(self) -> None:
        """Ask the node to stop (SIGTERM) without waiting for it."""
        if (pid := self.pidfile.alive_pid()) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def stop(self) -> bool:
        pid = self.pidfile.alive_pid()
        if pid is None:
            self.pidfile.remove()
            return False
        terminate(pid, timeout=60)
        self.pidfile.remove()
        return True


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def new_cluster_id() -> str:
    """A KRaft cluster id: a URL-safe base64 UUID, as StorageTool random-uuid makes (which would cost a JVM start).

    Like Kafka's own ``Uuid.randomUuid``, it never starts with "-": StorageTool would read such an id as an option
    and refuse to format (1 stack in 64 failed to start, seen in CI).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
