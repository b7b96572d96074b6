"""The dead-letter topic: records that could not be processed, with where they came from and why in headers.

A dead letter keeps the original key and value byte for byte, so that it can be inspected and re-submitted as it
was; the original headers travel along, after the ``dlq.*`` ones.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kernel.producer_connection import ProducerConnection
from kernel.publisher import LogUnavailable

HEADER_PREFIX = "dlq."
ORIGINAL_TOPIC = "dlq.original_topic"
ORIGINAL_PARTITION = "dlq.original_partition"
ORIGINAL_OFFSET = "dlq.original_offset"
ORIGINAL_KEY = "dlq.original_key"
ERROR_TYPE = "dlq.error_type"
ERROR = "dlq.error"
STAGE = "dlq.stage"
FAILED_AT = "dlq.failed_at"
WORKER = "dlq.worker"

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class Origin:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


def dead_letter_headers(
    origin: Origin, error_type: str, error: str, stage: str, worker: str
) -> list[tuple[str, bytes]]:
    ours = [
        (ORIGINAL_TOPIC, origin.topic.encode()),
        (ORIGINAL_PARTITION, str(origin.partition).encode()),
        (ORIGINAL_OFFSET, str(origin.offset).encode()),
        (ORIGINAL_KEY, origin.key or b""),
        (ERROR_TYPE, error_type.encode()[:200]),
        (ERROR, error.encode(errors="replace")[:4000]),
        (STAGE, stage.encode()),
        (FAILED_AT, datetime.now(UTC).isoformat().encode()),
        (WORKER, worker.encode()),
    ]
    return ours + [(k, v) for k, v in origin.headers if not k.startswith(HEADER_PREFIX)]


class DeadLetterSender:
    def __init__(self, connection: ProducerConnection, topic: str, worker: str) -> None:
        self._connection = connection
        self.topic = topic
        self._worker = worker

    async def send(self, origin: Origin, error_type: str, error: str, stage: str) -> None:
        """Appends the dead letter and returns once the broker acknowledged it (acks=all)."""
        producer = self._connection.producer
        if producer is None:
            raise LogUnavailable(f"not connected to the broker: {self._connection.last_error}")
        headers = dead_letter_headers(origin, error_type, error, stage, self._worker)
        delivery = await producer.send(self.topic, value=origin.value, key=origin.key, headers=headers)
        await delivery
