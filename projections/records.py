"""A record as read from the log, independent of the Kafka client that read it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
