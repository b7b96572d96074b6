"""Kafka client factories and topic administration, configured for a system of record.

aiokafka's defaults (acks=1, no idempotence, auto-commit) are wrong for an event log, so every client here is
built with explicit settings.
"""

import asyncio
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from kernel.kafka_security import client_security
from kernel.logging import get_logger
from kernel.settings import Settings
from kernel.topics import TopicSpec

log = get_logger(__name__)

TOPIC_ALREADY_EXISTS = 36


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 0,
        "request_timeout_ms": 15_000,
        "metadata_max_age_ms": 60_000,
        "max_batch_size": 256 * 1024,
    }
    return AIOKafkaProducer(**(options | client_security(settings) | overrides))


def make_consumer(settings: Settings, *topics: str, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": 50,
        "isolation_level": "read_committed",
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 1_000,
    }
    return AIOKafkaConsumer(*topics, **(options | client_security(settings) | overrides))


def make_admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000, **client_security(settings)
    )


class TopicMismatch(RuntimeError):
    """An existing topic whose partition count differs from what the project expects."""


async def ensure_topics(settings: Settings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the missing topics; verify the partition counts of existing ones. Returns the names created."""
    specs = list(specs)
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created: list[str] = []
        if missing:
            # The local stack's size is known; a broker just joined may not be in every node's metadata yet (a
            # cluster's topics were once made with 2 replicas of 3 that way).
            brokers = (
                settings.kafka_brokers if settings.runs_own_kafka else len((await admin.describe_cluster())["brokers"])
            )
            replicas, min_insync = replication(settings, brokers)
            response = await admin.create_topics(
                [
                    NewTopic(
                        s.name, s.partitions, replicas, topic_configs=s.configs | {"min.insync.replicas": min_insync}
                    )
                    for s in missing
                ]
            )
            for topic, error_code, *rest in response.topic_errors:
                if error_code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {topic}: error {error_code} {rest}")
                if error_code == 0:
                    created.append(topic)
        # A topic created a moment ago can describe with no partitions until its metadata has spread: wait for it
        # rather than call it a mismatch.
        deadline = asyncio.get_running_loop().time() + 10.0
        while True:
            described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in specs])}
            settled = all(described[s.name]["partitions"] for s in specs)
            if settled or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        for spec in specs:
            partitions = len(described[spec.name]["partitions"])
            if partitions != spec.partitions:
                raise TopicMismatch(
                    f"topic {spec.name} has {partitions} partitions, the project expects {spec.partitions}; "
                    "set ZIXLY_TOPIC_PARTITIONS to match or recreate the topic"
                )
        log.info("topics ready", created=created, topics=[s.name for s in specs])
        return created
    finally:
        await admin.close()


def replication(settings: Settings, brokers: int) -> tuple[int, str]:
    """Replicas per partition and min.insync.replicas: what the settings say, else what the cluster's size allows.

    Three replicas with two in sync survive the loss of one broker without refusing an append or losing one
    acknowledged; a single broker can only have one of each.
    """
    replicas = settings.topic_replication_factor or min(3, brokers)
    min_insync = settings.topic_min_insync_replicas or (2 if replicas >= 3 else 1)
    return replicas, str(min_insync)


async def wait_for_brokers(settings: Settings, count: int, timeout: float = 90.0) -> None:
    """Wait until ``count`` brokers have joined the cluster and each of them answers (a replicated topic needs them
    all to be created).

    The cluster's list is not enough: after the whole cluster restarts, it still names the brokers registered before,
    until their sessions time out, whether they serve yet or not. A ``stack up`` in CI sent its first request to a
    node so named that was still starting, and failed.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    await wait_for_kafka(settings, timeout)
    joined, answering = 0, 0
    while asyncio.get_running_loop().time() < deadline:
        admin = make_admin(settings)
        try:
            await admin.start()
            brokers = (await admin.describe_cluster())["brokers"]
            joined = len(brokers)
            if joined >= count:
                answering = await brokers_answering(settings, [f"{b['host']}:{b['port']}" for b in brokers])
                if answering >= joined:
                    return
        except KafkaError:
            pass
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
    raise TimeoutError(
        f"{joined} of {count} brokers joined the cluster at {settings.kafka_bootstrap} in time, {answering} answering"
    )


async def brokers_answering(settings: Settings, addresses: list[str]) -> int:
    """How many of the brokers at ``addresses`` answer a metadata request of their own."""
    answered = 0
    with _refusals_expected():
        for address in addresses:
            admin = make_admin(settings.replaced(kafka_bootstrap_servers=address))
            try:
                await asyncio.wait_for(admin.start(), 5)  # its bootstrap asks this broker, and only it, for metadata
                answered += 1
            except Exception:  # any failure means "not yet"
                pass
            finally:
                await admin.close()
    return answered


async def wait_for_kafka(settings: Settings, timeout: float = 60.0) -> None:
    """Wait until an admin client can list topics: an open port is not a ready broker."""
    deadline = asyncio.get_running_loop().time() + timeout
    with _refusals_expected():
        await _poll_until_ready(settings, deadline)


@contextmanager
def _refusals_expected() -> Iterator[None]:
    """While a broker starts, every refused connection is expected; aiokafka would log each as an error."""
    client_log = logging.getLogger("aiokafka")
    previous_level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        client_log.setLevel(previous_level)


async def _poll_until_ready(settings: Settings, deadline: float) -> None:
    last_error: Exception | None = None
    while asyncio.get_running_loop().time() < deadline:
        admin = make_admin(settings)
        try:
            await asyncio.wait_for(admin.start(), 5)
            await asyncio.wait_for(admin.list_topics(), 5)
            return
        except Exception as exc:  # any failure here just means "not yet"
            last_error = exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise TimeoutError(f"Kafka at {settings.kafka_bootstrap} not ready in time: {last_error!r}")


def _retriable(exc: BaseException) -> bool:
    return isinstance(exc, KafkaError) and exc.retriable


@retry(
    retry=retry_if_exception(_retriable),
    wait=wait_exponential(multiplier=0.2, max=2),
    stop=stop_after_delay(30),
    reraise=True,
)
async def group_has_members(settings: Settings, group_id: str) -> bool:
    """Whether some consumer is in ``group_id`` right now (a running service), as the group coordinator says.

    A broker that has never had a consumer group answers "coordinator not available" until it has created its
    offsets topic: that, and the other retriable answers, are asked again."""
    admin = make_admin(settings)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group_id])
        # DescribeGroups: (error_code, group_id, state, protocol_type, protocol, members, ...)
        _, _, state, _, _, members, *_ = response.groups[0]
        return bool(members) and state != "Dead"
    finally:
        await admin.close()


async def delete_topic(settings: Settings, topic: str) -> None:
    """Drops a topic (a benchmark's own, once measured)."""
    admin = make_admin(settings)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
