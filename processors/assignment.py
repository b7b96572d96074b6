"""The partitions this worker owns, per topic, as a metric: operators see how the group shared the log, and anyone
can tell when a rebalance is over (the count is updated once the assigned partitions' finished work is learnt, that
is when the worker is ready to run their jobs)."""

from collections.abc import Iterable
from typing import Any

from processors.metrics import ASSIGNED_PARTITIONS


class OwnedPartitions:
    def __init__(self) -> None:
        self._owned: set[tuple[str, int]] = set()
        self._topics: set[str] = set()

    def revoked(self, partitions: Iterable[Any]) -> None:
        self._owned -= {(tp.topic, tp.partition) for tp in partitions}
        self._publish()

    def assigned(self, partitions: Iterable[Any]) -> None:
        self._owned |= {(tp.topic, tp.partition) for tp in partitions}
        self._publish()

    def count(self, topic: str) -> int:
        return sum(1 for owned_topic, _ in self._owned if owned_topic == topic)

    def _publish(self) -> None:
        self._topics |= {topic for topic, _ in self._owned}
        for topic in self._topics:  # a topic whose partitions all went elsewhere reads 0, not its last count
            ASSIGNED_PARTITIONS.labels(topic).set(self.count(topic))
