"""Reading the event log directly, outside any consumer group: replays, the events CLI, time travel.

A reader assigns itself partitions, so it never disturbs the groups of the running services and commits nothing.
"""

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple, Self

from aiokafka import AIOKafkaConsumer, TopicPartition

from kernel.kafka import make_admin, make_consumer
from kernel.settings import Settings


class LogRecord(NamedTuple):
    """A record as read from the log, whichever consumer read it (a named tuple: a replay makes a million of them,
    and a frozen dataclass costs 1.5 µs each)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    key: bytes | None = None
    timestamp_ms: int = -1


Offsets = dict[int, int]


class LogReader:
    def __init__(self, settings: Settings, topic: str, fetch_bytes: int = 8 * 1024 * 1024) -> None:
        self._topic = topic
        self._settings = settings
        self._partitions: list[int] = []
        self._consumer: AIOKafkaConsumer = make_consumer(
            settings,
            group_id=None,
            max_partition_fetch_bytes=fetch_bytes,
            fetch_max_bytes=4 * fetch_bytes,
            fetch_max_wait_ms=100,
            check_crcs=False,
        )

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self._consumer.stop()

    @property
    def topic(self) -> str:
        return self._topic

    async def partitions(self) -> list[int]:
        if not self._partitions:
            admin = make_admin(self._settings)
            await admin.start()
            try:
                [described] = await admin.describe_topics([self._topic])
            finally:
                await admin.close()
            if described["error_code"] or not described["partitions"]:
                raise LookupError(f"topic {self._topic} does not exist")
            self._partitions = sorted(p["partition"] for p in described["partitions"])
        return self._partitions

    def _tps(self, partitions: list[int]) -> list[TopicPartition]:
        return [TopicPartition(self._topic, p) for p in partitions]

    async def end_offsets(self) -> Offsets:
        """Per partition, the offset the next record will get (for read_committed: the last stable offset)."""
        ends = await self._consumer.end_offsets(self._tps(await self.partitions()))
        return {tp.partition: offset for tp, offset in ends.items()}

    async def beginning_offsets(self) -> Offsets:
        starts = await self._consumer.beginning_offsets(self._tps(await self.partitions()))
        return {tp.partition: offset for tp, offset in starts.items()}

    async def uncommitted(self, group: str, partitions: list[int], max_tail: int) -> tuple[Offsets, Offsets]:
        """Where ``group``'s consumer will start reading each partition, and the end: its committed offset, or the
        beginning for a partition it never committed (auto_offset_reset=earliest). A tail longer than ``max_tail``
        records is left out: whoever asks reads a bounded tail."""
        admin = make_admin(self._settings)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(group, partitions=self._tps(partitions))
        finally:
            await admin.close()
        ends, beginnings = await self.end_offsets(), await self.beginning_offsets()
        starts: Offsets = {}
        for partition in partitions:
            position = committed.get(TopicPartition(self._topic, partition))
            start = position.offset if position is not None and position.offset >= 0 else beginnings[partition]
            if ends[partition] - start <= max_tail:
                starts[partition] = start
        return starts, {p: ends[p] for p in starts}

    async def offsets_for_time(self, moment: datetime) -> Offsets:
        """Per partition, the first offset at or after ``moment`` (the end offset where there is none)."""
        partitions = await self.partitions()
        found = await self._consumer.offsets_for_times(
            {tp: int(moment.timestamp() * 1000) for tp in self._tps(partitions)}
        )
        ends = await self.end_offsets()
        return {tp.partition: (at.offset if at is not None else ends[tp.partition]) for tp, at in found.items()}

    async def read(
        self, start: Mapping[int, int], stop: Mapping[int, int] | None = None, max_records: int = 10_000
    ) -> AsyncIterator[list[LogRecord]]:
        """Batches of records from ``start`` up to (not including) ``stop`` per partition; with no ``stop``, follows
        the log for as long as the caller keeps reading."""
        pending = {p: o for p, o in start.items() if stop is None or o < stop.get(p, 0)}
        if not pending:
            return
        tps = self._tps(sorted(pending))
        self._consumer.assign(tps)
        for tp in tps:
            self._consumer.seek(tp, pending[tp.partition])
        while pending or stop is None:
            fetched: dict[TopicPartition, list[Any]] = await self._consumer.getmany(
                *[tp for tp in tps if tp.partition in pending or stop is None],
                timeout_ms=500,
                max_records=max_records,
            )
            batch: list[LogRecord] = []
            for tp, records in fetched.items():
                limit = stop.get(tp.partition, 0) if stop is not None else None
                for r in records:
                    if limit is not None and r.offset >= limit:
                        break
                    batch.append(
                        LogRecord(tp.topic, tp.partition, r.offset, r.value, tuple(r.headers or ()), r.key, r.timestamp)
                    )
                if limit is not None:
                    position = await self._consumer.position(tp)
                    if position >= limit:
                        pending.pop(tp.partition, None)
            if batch:
                yield batch
            elif stop is not None and pending:
                # Nothing came back: a partition whose remaining offsets are transaction markers or compacted away.
                for tp in tps:
                    if tp.partition in pending and await self._consumer.position(tp) >= stop[tp.partition]:
                        pending.pop(tp.partition)
