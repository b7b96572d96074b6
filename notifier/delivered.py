"""Notifications already in the log are not delivered again when the notifier's partitions change hands.

The notifier commits after each batch; one that dies in the middle of a batch leaves its successor to read that
batch again, and the notifications it had sent would go out twice. Each one it sends (or gives up on) is appended as
a NotificationSent (NotificationFailed) with an id derived from job, outcome, channel and address, on the job's own
partition. When partitions are assigned, their tails after the group's committed offsets are read and those ids
remembered; a delivery whose id is among them is skipped. The tail is all it spans, so it stays small.
"""

from dataclasses import dataclass, field

from kernel.log_reader import LogReader
from kernel.logging import get_logger
from kernel.settings import Settings
from schemas.codec import UndecodableEvent, decode, event_type_of
from schemas.events import NotificationFailed, NotificationSent

log = get_logger(__name__)
RECORDED = frozenset({NotificationSent.TYPE, NotificationFailed.TYPE})
MAX_TAIL = 200_000  # past this, a tail is not read: its notifications may go out again (at least once)


@dataclass
class DeliveredNotifications:
    event_ids: set[str] = field(default_factory=set)

    def recorded(self, event_id: object) -> bool:
        return str(event_id) in self.event_ids

    def remember(self, event_id: object) -> None:
        self.event_ids.add(str(event_id))

    async def learn(self, settings: Settings, group: str, topic: str, partitions: list[int]) -> int:
        """Reads each partition from the group's committed offset (its beginning when never committed) to its end."""
        self.event_ids.clear()
        if not partitions:
            return 0
        async with LogReader(settings, topic) as reader:
            starts, ends = await reader.uncommitted(group, partitions, MAX_TAIL)
            async for batch in reader.read(starts, ends):
                for record in batch:
                    if event_type_of(record.headers) in RECORDED and record.value is not None:
                        try:
                            self.remember(decode(record.value).event_id)
                        except UndecodableEvent:
                            continue
        log.info(
            "notifications already recorded, learnt at assignment", partitions=partitions, recorded=len(self.event_ids)
        )
        return len(self.event_ids)
