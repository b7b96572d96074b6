import asyncio

from processors.appends_in_flight import WORKING_FOR, AppendsInFlight


async def landing_after(seconds: float, value: str) -> str:
    await asyncio.sleep(seconds)
    return value


async def work_for(appends: AppendsInFlight, partition: tuple[str, int], seconds: float) -> str:
    WORKING_FOR.set(partition)
    return await appends.track(landing_after(seconds, f"{partition[1]}"))


async def test_a_revocation_waits_for_the_appends_of_its_partitions_only() -> None:
    appends = AppendsInFlight()
    slow_here = asyncio.ensure_future(work_for(appends, ("events", 1), 0.2))
    slower_elsewhere = asyncio.ensure_future(work_for(appends, ("events", 2), 5))
    await asyncio.sleep(0.01)

    landed, waiting = await appends.drained([("events", 1)], patience=2)

    assert (landed, waiting) == (1, 0)
    assert slow_here.done()
    assert not slower_elsewhere.done()
    slower_elsewhere.cancel()


async def test_the_wait_is_bounded_and_says_what_still_waits() -> None:
    appends = AppendsInFlight()
    stuck = asyncio.ensure_future(work_for(appends, ("events", 3), 5))
    await asyncio.sleep(0.01)

    assert await appends.drained([("events", 3)], patience=0.05) == (0, 1)
    stuck.cancel()


async def test_an_append_that_landed_is_forgotten_and_one_outside_a_job_is_not_tracked() -> None:
    appends = AppendsInFlight()
    assert await work_for(appends, ("events", 4), 0) == "4"
    assert await appends.track(landing_after(0, "free")) == "free"

    assert await appends.drained([("events", 4)], patience=1) == (0, 0)


async def test_a_task_stopped_mid_append_leaves_the_append_to_land() -> None:
    appends = AppendsInFlight()
    worker = asyncio.ensure_future(work_for(appends, ("events", 5), 0.1))
    await asyncio.sleep(0.01)
    worker.cancel()

    assert await appends.drained([("events", 5)], patience=1) == (1, 0)
