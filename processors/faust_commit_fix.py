"""A correction to faust-streaming's offset commits, which can commit past a record still being processed.

``Consumer._new_offset`` (faust-streaming 0.15.3) refuses to commit only when the lowest acknowledged offset is
more than one past the committed position: with the committed position at N (record N is the next to finish) and
N+1, N+2 … acknowledged, it commits N+3, and record N is never processed if the worker dies before it finishes.
Agents with ``concurrency`` > 1, like ours, finish records out of order all the time; a worker killed in the middle
of a job then loses that job (the fault tests in tests/integration/test_failures.py caught it). And ``perform_seek``
records a committed offset of 0 as "none", which disables even that check at the start of a partition.

``install()`` replaces both methods with versions that commit only a run of acknowledged offsets that starts at the
committed position, and nothing for a partition whose committed position is not known.

Upstream, a partition without a known position commits the run that starts at its lowest acknowledged offset, and
a revocation makes every revoked partition such a one: Faust forgets their positions before the revocation's
handlers run, while records go on being acknowledged (lifecycle events at once, jobs as they finish) and the
revocation's commit follows. Records below that run that were dropped, not run (the jobs waiting when their
partition was revoked), were then committed past and never ran: the first 40 jobs of one partition and 6 sweep
chunks under doubled load, 12 jobs with a killed leader once a revocation waited longer. So a revoked partition
commits nothing more (its next owner skips what already has an outcome), and a partition the group has never
committed starts from its first offset as its position (the workers reset to the earliest).

The seek back to the committed positions, which Faust also runs to re-read a batch it dropped, moves partitions
committed at 0 or never committed too (upstream leaves them past the dropped records).
"""

import asyncio
from collections.abc import Mapping
from typing import Any

from faust.transport import consumer as faust_consumer
from faust.types import TP
from faust.utils.functional import consecutive_numbers

# Kept for the test that shows the upstream behaviour (and tells when an upgrade makes this module unnecessary).
UPSTREAM_NEW_OFFSET = faust_consumer.Consumer._new_offset


def _new_offset(self: Any, tp: TP) -> int | None:
    acked: list[int] = self._acked[tp]
    if not acked:
        return None
    gaps = self._gap[tp]
    if gaps:
        # Offsets that will never be delivered (compaction, transaction markers) count as acknowledged.
        highest = max(acked)
        ranges = sorted(gaps.overlap(0, highest), key=lambda interval: interval.begin)
        if ranges:
            filled = [offset for interval in ranges for offset in range(interval.begin, interval.end)]
            acked.extend(filled)
            gaps.chop(0, max(filled[-1], highest + 1))
    acked.sort()
    committed: int | None = self._committed_offset[tp]
    if committed is None:
        return None  # where the run must start is unknown (a revoked partition, or its first offset unknown)
    if acked[0] > committed:
        return None  # record `committed` is still in flight: nothing past it may be committed yet
    batch = list(next(consecutive_numbers(acked)))
    acked[: len(batch)] = []
    self._acked_index[tp].difference_update(batch)
    return int(batch[-1]) + 1


# How long an assignment waits for the first offsets of partitions never committed (within Faust's own bound on
# the seek, broker_request_timeout).
FIRST_OFFSETS_TIMEOUT_SECONDS = 10.0


async def _perform_seek(self: Any) -> None:
    committed: Mapping[Any, int | None] = await self.seek_to_committed()
    self._read_offset.update(
        {tp: offset if offset is not None and offset >= 0 else None for tp, offset in committed.items()}
    )
    positions = {faust_consumer.ensure_TP(tp): offset for tp, offset in committed.items() if offset is not None}
    never = [faust_consumer.ensure_TP(tp) for tp, offset in committed.items() if offset is None]
    rewind = {tp: 0 for tp, offset in positions.items() if offset == 0}
    if never and self.app.conf.consumer_auto_offset_reset == "earliest":
        try:
            first = await asyncio.wait_for(self.earliest_offsets(*never), FIRST_OFFSETS_TIMEOUT_SECONDS)
        except Exception as exc:  # then they commit nothing until the next assignment
            self.log.warning("first offsets of partitions never committed unknown: %r", exc)
        else:
            found = {faust_consumer.ensure_TP(tp): offset for tp, offset in first.items() if offset >= 0}
            positions.update(found)
            rewind.update(found)
    self._committed_offset.update(positions)
    # aiokafka's seek_to_committed moves only partitions committed past offset 0; the others keep their fetch
    # position. Faust calls this to read again a batch it dropped (one that arrived while its flow was stopped, at a
    # rebalance), so a partition committed at 0, or never, skipped the dropped records for good: seen on Kafka 4.4
    # as a sweep's chunks in two never-committed partitions left unrun until the next rebalance.
    for tp, offset in rewind.items():
        try:
            await self._seek(tp, offset)
        except Exception as exc:  # no longer assigned: its next owner starts from the committed position
            self.log.warning("could not rewind %r to %r: %r", tp, offset, exc)


def install() -> None:
    faust_consumer.Consumer._new_offset = _new_offset  # type: ignore[method-assign]
    faust_consumer.Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
