"""`zixly stack up --brokers 3`: a replicated KRaft cluster whose topics survive one broker and refuse appends
without two, and whose log the default Kafka release reads after an upgrade from the other tested one.

The cluster has a folder and ports of its own; Postgres and S3 are the suite's.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from kernel.kafka import make_admin
from kernel.settings import Settings
from tests.conftest import ROOT
from tests.kafka_cluster import NODES, replicated_cluster, settings_of
from zixly.stack.processes import PidFile

OTHER_KAFKA = "3.9.1"


@pytest.fixture(scope="module")
def cluster(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    # On the 3.9 line: the rest of the suite runs the default (4.x), so both are exercised in every run.
    with replicated_cluster(stack, tmp_path_factory.mktemp("cluster") / "zixly", version=OTHER_KAFKA) as env:
        yield env


def node_pids(env: dict[str, str]) -> dict[int, int]:
    run = Path(env["ZIXLY_HOME"]) / "run"
    pids = {
        1: PidFile(run / "kafka.pid").read(),
        2: PidFile(run / "kafka-2.pid").read(),
        3: PidFile(run / "kafka-3.pid").read(),
    }
    return {node: pid for node, pid in pids.items() if pid is not None}


def test_the_cluster_has_three_brokers_and_replicates_every_topic_three_times_two_in_sync(
    cluster: dict[str, str],
) -> None:
    settings = settings_of(cluster)

    async def described() -> tuple[int, dict[str, list[int]], dict[str, str]]:
        admin = make_admin(settings)
        await admin.start()
        try:
            brokers = len((await admin.describe_cluster())["brokers"])
            # Each broker learns of new topics from the controller in its own time: ask until the one asked has.
            deadline = time.monotonic() + 30
            while True:
                topics = await admin.describe_topics([settings.job_events_topic, settings.retries_topic])
                if all(t["partitions"] for t in topics) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            replicas = {t["topic"]: sorted({len(p["replicas"]) for p in t["partitions"]}) for t in topics}
            # The configs too: a broker that has not learnt the topic yet answers with none (CI met one).
            while True:
                configs = await admin.describe_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, settings.job_events_topic)]
                )
                entries = {name: value for name, value, *_ in configs[0].resources[0][4]}
                if "min.insync.replicas" in entries or time.monotonic() > deadline:
                    return brokers, replicas, entries
                await asyncio.sleep(0.2)
        finally:
            await admin.close()

    brokers, replicas, configs = asyncio.run(described())

    assert brokers == 3
    assert replicas == {settings.job_events_topic: [3], settings.retries_topic: [3]}
    assert configs["min.insync.replicas"] == "2"
    assert settings.kafka_bootstrap.count(",") == 2


def test_appends_survive_a_killed_leader_and_are_refused_without_a_quorum_of_replicas(
    cluster: dict[str, str],
) -> None:
    settings = settings_of(cluster)
    topic = settings.job_events_topic

    async def scenario() -> tuple[int, int, int, str]:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True, request_timeout_ms=5000
        )
        await producer.start()
        sent = 0
        try:
            for index in range(100):
                await producer.send_and_wait(topic, f"before-{index}".encode(), partition=0)
                sent += 1
            leader = producer.client.cluster.leader_for_partition(TopicPartition(topic, 0))
            os.kill(node_pids(cluster)[leader], signal.SIGKILL)
            for index in range(100):
                await producer.send_and_wait(topic, f"after-{index}".encode(), partition=0)
                sent += 1
            survivors = [node for node in node_pids(cluster) if node != leader]
            os.kill(node_pids(cluster)[survivors[0]], signal.SIGSTOP)  # one replica left: below min.insync
            refused = "accepted"
            try:
                await asyncio.wait_for(producer.send_and_wait(topic, b"without-quorum", partition=0), 20)
            except (KafkaError, TimeoutError) as error:
                refused = type(error).__name__
            finally:
                os.kill(node_pids(cluster)[survivors[0]], signal.SIGCONT)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            values: list[bytes] = []
            deadline = time.monotonic() + 30
            while len(values) < sent and time.monotonic() < deadline:
                batch = await consumer.getmany(partition, timeout_ms=500)
                values += [record.value for record in batch.get(partition, []) if record.value is not None]
        finally:
            await consumer.stop()
        mine = [value for value in values if value.startswith((b"before-", b"after-"))]
        return sent, len(mine), len(set(mine)), refused

    sent, read, distinct, refused = asyncio.run(scenario())

    assert sent == 200
    assert (read, distinct) == (200, 200)  # every acknowledged append, once, after the leader died
    assert refused != "accepted"


def test_the_default_release_reads_the_clusters_log_after_an_upgrade_from_the_other(
    cluster: dict[str, str],
) -> None:
    default = Settings().kafka_version
    assert default != OTHER_KAFKA, "the upgrade is from the other tested release to the default"
    settings = settings_of(cluster)
    topic = settings.job_events_topic
    home = Path(cluster["ZIXLY_HOME"])

    async def append() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for index in range(50):
                await producer.send_and_wait(topic, f"upgrade-{index}".encode(), partition=1)
        finally:
            await producer.stop()

    async def read_back() -> list[bytes]:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partition = TopicPartition(topic, 1)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            values: list[bytes] = []
            deadline = time.monotonic() + 60
            while sum(v.startswith(b"upgrade-") for v in values) < 50 and time.monotonic() < deadline:
                batch = await consumer.getmany(partition, timeout_ms=500)
                values += [record.value for record in batch.get(partition, []) if record.value is not None]
            return [value for value in values if value.startswith(b"upgrade-")]
        finally:
            await consumer.stop()

    asyncio.run(append())
    upgraded = {
        key: value for key, value in cluster.items() if key not in ("ZIXLY_KAFKA_VERSION", "ZIXLY_KAFKA_BROKERS")
    }
    for command in (["stack", "down"], ["stack", "up", "--brokers", str(NODES)]):
        done = subprocess.run(
            [sys.executable, "-m", "zixly", *command],
            cwd=ROOT,
            env=upgraded,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    assert sorted(asyncio.run(read_back())) == sorted(f"upgrade-{index}".encode() for index in range(50))
    assert [(home / folder / "kafka-version").read_text() for folder in ("kafka", "kafka-2", "kafka-3")] == [
        default
    ] * 3
