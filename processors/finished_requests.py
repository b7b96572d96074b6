"""Requests whose outcome is already in the log are not run again when their partition changes hands.

A worker acknowledges a request after its outcome is appended, and Faust commits acknowledgements every second
(and, here, at a revocation). A job that finishes while its partition is being handed over has its outcome in the
log but its offset not committed: the partition's next owner reads the request again. When a partition is
assigned, its tail after the committed offset is read (keys and headers only, no decoding) and the jobs that
already have an outcome are remembered; their requests are then acknowledged without running. The set spans only
that tail, so it stays small.
"""

from dataclasses import dataclass, field

from aiokafka import TopicPartition

from kernel.kafka import make_admin
from kernel.log_reader import LogReader
from kernel.logging import get_logger
from kernel.settings import Settings
from schemas.codec import EVENT_TYPE_HEADER
from schemas.events import JobCancelled, JobCompleted, JobDeadLettered, JobFailed, JobRetryScheduled

log = get_logger(__name__)
# What ends a request's first attempt (a scheduled retry runs from the retries topic, not from the request).
OUTCOMES = frozenset(t.TYPE for t in (JobCompleted, JobFailed, JobDeadLettered, JobCancelled, JobRetryScheduled))
# A partition this group never committed would be read from its very start: past this many records it is not.
MAX_TAIL = 200_000


@dataclass
class FinishedRequests:
    by_partition: dict[int, set[bytes]] = field(default_factory=dict)

    def has_outcome(self, partition: int, job_key: bytes | None) -> bool:
        return job_key is not None and job_key in self.by_partition.get(partition, set())

    def forget(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.by_partition.pop(partition, None)

    async def learn(self, settings: Settings, group: str, partitions: list[int]) -> int:
        """Reads each partition from the group's committed offset to its end; how many finished jobs it found."""
        if not partitions:
            return 0
        topic = settings.job_events_topic
        admin = make_admin(settings)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(
                group, partitions=[TopicPartition(topic, p) for p in partitions]
            )
        finally:
            await admin.close()
        async with LogReader(settings, topic) as reader:
            ends = await reader.end_offsets()
            starts: dict[int, int] = {}
            for partition in partitions:
                position = committed.get(TopicPartition(topic, partition))
                if position is not None and position.offset >= 0 and ends[partition] - position.offset <= MAX_TAIL:
                    starts[partition] = position.offset
            found = 0
            for partition in partitions:
                self.by_partition[partition] = set()
            async for batch in reader.read(starts, {p: ends[p] for p in starts}):
                for record in batch:
                    event_type = next((v for k, v in record.headers if k == EVENT_TYPE_HEADER), b"").decode()
                    if event_type in OUTCOMES and record.key is not None:
                        self.by_partition[record.partition].add(record.key)
                        found += 1
        log.info(
            "finished jobs learnt at assignment",
            partitions=partitions,
            finished=found,
            tail=sum(ends[p] - starts[p] for p in starts),
        )
        return found
