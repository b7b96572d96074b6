import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport import consumer as faust_consumer

from processors import faust_delivery
from processors.agents import wanted_by_the_job_agent
from schemas.codec import EVENT_TYPE_HEADER


class Consumer:
    """What ``deliver`` uses of Faust's consumer: ``suspend_flow`` and a ``wait_first`` like mode's."""

    def __init__(self) -> None:
        self.suspend_flow = asyncio.Event()
        self.waits = 0

    async def wait_first(self, *waitables: Any) -> None:
        self.waits += 1
        tasks = [asyncio.ensure_future(waitable) for waitable in waitables]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                task.result()  # mode's wait_first raises what the first finished raised


async def test_a_record_whose_delivery_need_not_wait_is_delivered_in_line_without_a_task() -> None:
    consumer, delivered = Consumer(), []

    async def callback(message: str) -> None:
        delivered.append(message)

    await faust_delivery.deliver(consumer, callback, "record")
    assert (delivered, consumer.waits) == (["record"], 0)


async def test_a_delivery_that_must_wait_goes_on_where_it_stopped_until_it_is_done() -> None:
    consumer, room, steps = Consumer(), asyncio.Event(), []

    async def callback(message: str) -> None:
        steps.append("full")
        await room.wait()  # a stream buffer with no room yet
        steps.append("delivered")

    asyncio.get_running_loop().call_later(0.05, room.set)
    await faust_delivery.deliver(consumer, callback, "record")
    assert (steps, consumer.waits) == (["full", "delivered"], 1)


async def test_a_suspended_flow_stops_a_waiting_delivery_and_cancels_it() -> None:
    consumer, steps = Consumer(), []

    async def callback(message: str) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise

    asyncio.get_running_loop().call_later(0.05, consumer.suspend_flow.set)
    await asyncio.wait_for(faust_delivery.deliver(consumer, callback, "record"), 5)
    assert steps == ["cancelled"]


async def test_an_error_of_a_delivery_that_had_to_wait_reaches_the_drain_loop() -> None:
    async def callback(message: str) -> None:
        await asyncio.sleep(0)
        raise ValueError("undecodable")

    with pytest.raises(ValueError, match="undecodable"):
        await faust_delivery.deliver(Consumer(), callback, "record")


def test_the_job_agent_wants_requests_and_cancellations_and_no_other_lifecycle_event() -> None:
    def record(event_type: str | None) -> Any:
        return SimpleNamespace(headers=[] if event_type is None else [(EVENT_TYPE_HEADER, event_type.encode())])

    assert wanted_by_the_job_agent(record("JobRequested"))
    assert wanted_by_the_job_agent(record("JobCancelRequested"))
    assert not wanted_by_the_job_agent(record("JobCompleted"))
    assert not wanted_by_the_job_agent(record(None))


def test_the_copied_drain_loop_is_upstream_s_that_waits_for_every_record() -> None:
    # When an upgrade of faust-streaming makes this fail, compare its loop with ours and copy it again.
    faust_delivery.install()
    upstream = inspect.getsource(faust_delivery._UPSTREAM_DRAIN)
    assert (
        "await self.wait_first(\n                                callback(message), self.suspend_flow.wait()"
        in upstream
    )
    assert faust_consumer.Consumer._drain_messages is faust_delivery._drain_messages
