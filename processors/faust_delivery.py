"""How the worker's consumer hands fetched records to its agents: in line, and not at all when no agent wants them.

faust-streaming 0.15 delivers each record with ``wait_first(callback(message), suspend_flow.wait())``: four tasks
and at least two turns of the event loop per record, however busy the loop is. At a steady 200 jobs/s a turn of the
worker's loop takes milliseconds (the slots' appends), so delivering one record took 1 to 3 ms, the drain loop fell
behind, and requests reached the agent seconds after they were appended while the slots had nothing queued
(``zixly bench pipeline``, docs/performance.md). And the job events topic carries every lifecycle event, of which
the agent wants only requests and cancellations: the others were decoded into Faust events and passed through the
stream (one more turn of the loop each) only to be acknowledged.

``install()`` replaces ``Consumer._drain_messages`` with a copy of it that differs in two steps:

- the delivery coroutine runs in line until it first has to wait (a full stream buffer, flow control); only then is
  the rest of it raced against ``suspend_flow`` in a task, as upstream does for every record;
- a record that the predicate given to ``deliver_only`` for its topic refuses is acknowledged at once, which is what
  the agent did with it; commits still advance only over runs of acknowledged offsets (``faust_commit_fix``).
"""

import asyncio
import types
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any, cast

from faust.transport import consumer as faust_consumer
from faust.types import Message
from mode import Service

# Which records of a topic an agent of this worker wants; the others are acknowledged without delivery.
_WANTED: dict[str, Callable[[Message], bool]] = {}


def deliver_only(topic: str, wanted: Callable[[Message], bool]) -> None:
    _WANTED[topic] = wanted


async def deliver(consumer: Any, callback: Callable[[Message], Coroutine[Any, Any, None]], message: Message) -> None:
    """Runs ``callback(message)`` in line; if it has to wait, waits as upstream does, for it or for a suspended flow."""
    delivery = callback(message)
    try:
        waiting_on = delivery.send(None)
    except StopIteration:
        return
    await consumer.wait_first(_resumed(delivery, waiting_on), consumer.suspend_flow.wait())


async def _resumed(coroutine: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    return await _continue(coroutine, waiting_on)


@types.coroutine
def _continue(coroutine: Coroutine[Any, Any, Any], waiting_on: Any) -> Generator[Any, Any, Any]:
    """Goes on with ``coroutine`` from where it first suspended (on ``waiting_on``), as a task running it would:
    the task wakes this generator when what it waits on is done, or throws in a cancellation."""
    while True:
        try:
            yield waiting_on
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as exc:
            try:
                waiting_on = coroutine.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting_on = coroutine.send(None)
            except StopIteration as stop:
                return stop.value


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - the worker's consumer loop
    # Upstream's loop (faust-streaming 0.15.3), with the delivery above and the predicates of ``deliver_only``.
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = cast(Service, self)._stopped.is_set
    fetcher_should_stop = cast(Service, fetcher)._stopped.is_set

    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = faust_consumer.CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = cast(AsyncIterator[tuple[Any, Message]], getmany(timeout=1.0))
            # getmany can return at once again and again; the loop must get its turn
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        wanted = _WANTED.get(message.topic)
                        if wanted is not None and not wanted(message):
                            self.ack(message)
                        else:
                            await deliver(self, callback, message)
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                unset_flag(flag_consumer_fetching)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


_UPSTREAM_DRAIN = faust_consumer.Consumer._drain_messages


def install() -> None:
    faust_consumer.Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
