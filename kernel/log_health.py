"""The log's health as Prometheus sees it: replicas missing, partitions offline, consumer groups behind.

Kafka reports these through JMX, which the project's Prometheus does not scrape; reading them from the cluster's
metadata and the groups' committed offsets gives the same signals from a service that is scraped anyway. Every
projector reports them, so alerting rules take the max over instances.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Gauge

from kernel.kafka import make_admin, make_consumer
from kernel.logging import get_logger
from kernel.settings import Settings

UNDER_REPLICATED = Gauge(
    "zixly_kafka_under_replicated_partitions", "Partitions with fewer in-sync replicas than replicas", ["topic"]
)
OFFLINE = Gauge(
    "zixly_kafka_offline_partitions", "Partitions without a leader: neither readable nor writable", ["topic"]
)
GROUP_LAG = Gauge(
    "zixly_consumer_group_lag",
    "Records a consumer group has not committed yet, over the topic's partitions",
    ["group", "topic"],
)
# Groups of the project's own consumers: Faust's app (workers), the notifier, the sweep collector, the projectors
# (which keep their checkpoints in Postgres and appear here only when they also commit).
GROUP_PREFIX = "zixly"

log = get_logger(__name__)


class LogHealth:
    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self._settings = settings
        self._topics = topics

    async def watch(self, interval: float, stopping: asyncio.Event) -> None:
        """Refresh the gauges every ``interval`` seconds until ``stopping``, over clients kept open between rounds;
        a failed round is logged and its clients opened afresh for the next."""
        clients: _Clients | None = None
        try:
            while not stopping.is_set():
                try:
                    clients = clients or await _Clients.open(self._settings)
                    await self._refresh(clients)
                except Exception as exc:  # an unreachable broker must not stop the projector; the next round retries
                    log.warning("could not read the log's health", error=repr(exc)[:300])
                    if clients is not None:
                        await clients.close()
                    clients = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), interval)
        finally:
            if clients is not None:
                await clients.close()

    async def refresh(self) -> None:
        """One round, on clients of its own."""
        clients = await _Clients.open(self._settings)
        try:
            await self._refresh(clients)
        finally:
            await clients.close()

    async def _refresh(self, clients: "_Clients") -> None:
        described = await clients.admin.describe_topics(self._topics)
        partitions = self._record_replicas(described)
        ends = await clients.consumer.end_offsets(partitions) if partitions else {}
        groups = [name for name, *_ in await clients.admin.list_consumer_groups() if name.startswith(GROUP_PREFIX)]
        for group in groups:
            committed = await clients.admin.list_consumer_group_offsets(group)
            self._record_lag(group, committed, ends)

    def _record_replicas(self, described: list[dict[str, Any]]) -> list[TopicPartition]:
        partitions = []
        for topic in described:
            name = topic["topic"]
            under = offline = 0
            for partition in topic["partitions"]:
                partitions.append(TopicPartition(name, partition["partition"]))
                under += len(partition["isr"]) < len(partition["replicas"])
                offline += partition["leader"] < 0
            UNDER_REPLICATED.labels(name).set(under)
            OFFLINE.labels(name).set(offline)
        return partitions

    @staticmethod
    def _record_lag(group: str, committed: dict[TopicPartition, Any], ends: dict[TopicPartition, int]) -> None:
        behind: dict[str, int] = {}
        for tp, end in ends.items():
            offset = committed.get(tp)
            if offset is None or offset.offset < 0:
                continue  # the group does not read this partition (or never committed on it)
            behind[tp.topic] = behind.get(tp.topic, 0) + max(end - offset.offset, 0)
        for topic, lag in behind.items():
            GROUP_LAG.labels(group, topic).set(lag)


@dataclass
class _Clients:
    admin: AIOKafkaAdminClient
    consumer: AIOKafkaConsumer

    @classmethod
    async def open(cls, settings: Settings) -> "_Clients":
        admin, consumer = make_admin(settings), make_consumer(settings, group_id=None)
        try:
            await admin.start()
            await consumer.start()
        except BaseException:
            await cls(admin, consumer).close()
            raise
        return cls(admin, consumer)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.consumer.stop()
        with contextlib.suppress(Exception):
            await self.admin.close()
