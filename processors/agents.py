"""The Faust agents of jobs: thin loops that hand requested jobs, and retries once due, to the runner; a record no
worker can read goes to the dead-letter topic and its partition keeps flowing."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import faust

from kernel.dead_letters import Origin
from kernel.logging import bound_contextvars, get_logger
from kernel.settings import Settings
from processors import faust_delivery
from processors.assignment import OwnedPartitions
from processors.fair_queue import FairQueue
from processors.finished_requests import FinishedRequests
from processors.finished_work import FinishedRetries, retry_key
from processors.metrics import JOBS_WAITING, RECORDS_SKIPPED
from processors.runner import JobRunner
from processors.runtime import WorkerRuntime
from schemas.codec import TENANT_HEADER, UndecodableEvent, decode, event_type_of, header
from schemas.events import JobCancelRequested, JobRequested
from schemas.retries import RetryRequest

log = get_logger(__name__)
# How long a revocation waits for the revoked partitions' running jobs to finish (the rebalance waits too).
REVOKE_PATIENCE_SECONDS = 5.0
# How much longer it waits, when jobs are still running, for the events already sent to be acknowledged: an
# outcome that lands after the partition's next owner has read the tail makes that owner run the job again. A
# killed leader holds appends until the controller fences it (broker.session.timeout.ms, 9 s), and a longer wait
# must stay well inside the group's rebalance timeout (Faust's 60 s).
APPENDS_PATIENCE_SECONDS = 20.0


def register_agents(app: faust.App, topic: Any, runtime: WorkerRuntime, settings: Settings) -> None:
    retries_topic = app.topic(
        settings.retries_topic, value_type=bytes, key_type=bytes, partitions=settings.topic_partitions, internal=False
    )

    # One reader fills a queue per tenant; `worker_concurrency` slots take from the queues in turn.
    waiting: FairQueue[tuple[Any, Callable[[], Awaitable[None]]]] = FairQueue(settings.worker_queue_size)
    slots = Slots(runtime, waiting, FinishedRequests())
    finished_retries = FinishedRetries()
    running_retries: dict[asyncio.Future[None], int] = {}  # retries running now, and their partitions
    owned = OwnedPartitions()
    # Lifecycle events share the topic with the requests; acknowledged without passing through the agent's stream.
    faust_delivery.deliver_only(settings.job_events_topic, wanted_by_the_job_agent)

    @app.agent(topic, concurrency=1, name="zixly.run-requested-jobs")
    async def run_requested_jobs(stream: Any) -> None:
        tasks = [asyncio.ensure_future(slots.serve()) for _ in range(settings.worker_concurrency)]
        try:
            async for event, done in acked_when_done(stream):
                # Lifecycle events share the topic; the header tells them apart without decoding.
                event_type = event_type_of(event.headers)
                if event_type == JobRequested.TYPE:
                    tenant = header(event.headers, TENANT_HEADER) or ""
                    await waiting.put(tenant, (event, done))  # acknowledged once its job has run
                    JOBS_WAITING.set(len(waiting))
                    continue
                if event_type == JobCancelRequested.TYPE and event.key:
                    runtime.cancellations.request(event.key.decode())
                await done()
        finally:
            for task in tasks:
                task.cancel()

    @app.on_partitions_revoked.connect
    async def forget_revoked(_sender: Any, /, *revoked_partitions: Any, **__: Any) -> None:
        # Their new owner reads them again from the committed offset; running them here too would run them twice.
        revoked: set[Any] = revoked_partitions[0] if revoked_partitions else set()
        owned.revoked(revoked)
        partitions = {tp.partition for tp in revoked if tp.topic == settings.job_events_topic}
        slots.finished.forget(partitions)
        finished_retries.forget({tp.partition for tp in revoked if tp.topic == settings.retries_topic})
        dropped = await waiting.drop(lambda item: item[0].message.tp in revoked)
        if dropped:
            log.info("revoked partitions' waiting jobs left to their new owner", jobs=dropped)
        JOBS_WAITING.set(len(waiting))
        # A job still running here when its partition's new owner reads the tail would run there too, with two
        # outcomes (the chaos loop found 3 in 2,392 jobs): the group waits for this handler, so let the running jobs
        # finish, up to a bound, before the new owner reads.
        retry_partitions = {tp.partition for tp in revoked if tp.topic == settings.retries_topic}
        (finished, running), (retried, retrying) = await asyncio.gather(
            slots.settle(partitions, REVOKE_PATIENCE_SECONDS),
            settle(running_retries, retry_partitions, REVOKE_PATIENCE_SECONDS),
        )
        unanswered = await runtime.appends_settled(APPENDS_PATIENCE_SECONDS) if running or retrying else 0
        if finished or running or retried or retrying:
            log.info(
                "running jobs of revoked partitions settled",
                finished=finished,
                still_running=running,
                retries_finished=retried,
                retries_still_running=retrying,
                appends_unanswered=unanswered,
            )
        # No commit here: Faust has already forgotten the revoked partitions' positions, and what finished since the
        # last periodic commit is skipped by the partitions' next owners, who find its outcome in the tail they read
        # (processors/finished_requests.py, processors/faust_commit_fix.py).

    @app.on_partitions_assigned.connect
    async def learn_finished(_sender: Any, /, *assigned_partitions: Any, **__: Any) -> None:
        # A job that finished while its partition was changing hands has its outcome in the log and its request
        # uncommitted (a fault test caught it running twice in one run of four).
        assigned: set[Any] = assigned_partitions[0] if assigned_partitions else set()
        partitions = sorted(tp.partition for tp in assigned if tp.topic == settings.job_events_topic)
        retry_partitions = sorted(tp.partition for tp in assigned if tp.topic == settings.retries_topic)
        learnt = await asyncio.gather(
            slots.finished.learn(settings, app.conf.id, partitions),
            finished_retries.learn(settings, app.conf.id, retry_partitions),
            return_exceptions=True,
        )
        for failure in (result for result in learnt if isinstance(result, BaseException)):
            # Without it a handed-over job may run twice, which at-least-once allows.
            log.warning("could not learn the finished jobs of assigned partitions", error=repr(failure)[:300])
        owned.assigned(assigned)

    @app.agent(retries_topic, concurrency=settings.retry_concurrency, name="zixly.run-retries")
    async def run_retries(stream: Any) -> None:
        async for event, done in acked_when_done(stream):
            if await _run_retry(runtime, event, finished_retries, running_retries):
                await done()


def wanted_by_the_job_agent(message: Any) -> bool:
    return event_type_of(message.headers) in (JobRequested.TYPE, JobCancelRequested.TYPE)


async def acked_when_done(stream: Any) -> AsyncIterator[tuple[Any, Callable[[], Awaitable[None]]]]:
    """The stream's events, each acknowledged only when its handler says it is done.

    Faust acknowledges an event as soon as the agent leaves it, also when the agent is cancelled: a worker told to
    stop (SIGTERM) would then commit the jobs it was in the middle of, and they would never run. Acknowledging by
    hand after the work leaves a stopped worker's jobs to the next owner of the partition.
    """
    manual = stream.noack()
    async for event in manual.events():

        async def done(event: Any = event) -> None:
            await manual.ack(event)

        yield event, done


class Slots:
    """Where the worker's slots take their next job from, and what they skip: a job whose outcome the log already
    holds (learnt when its partition was assigned), or one this worker is running right now (a partition handed
    back to it while the job was still going)."""

    def __init__(
        self,
        runtime: WorkerRuntime,
        waiting: "FairQueue[tuple[Any, Callable[[], Awaitable[None]]]]",
        finished: FinishedRequests,
    ) -> None:
        self.runtime = runtime
        self.waiting = waiting
        self.finished = finished
        self.running: set[bytes] = set()
        self.tasks: dict[asyncio.Future[None], int] = {}  # the jobs running now, and their partitions

    async def serve(self) -> None:
        """One slot: the next tenant's oldest job, run, then acknowledged (not when a shutdown cancels it)."""
        while True:
            _, (event, done) = await self.waiting.get()
            JOBS_WAITING.set(len(self.waiting))
            key: bytes | None = event.key
            verdict = await self.finished.verdict(event.message.partition, key)
            if verdict == "revoked":
                RECORDS_SKIPPED.labels("partition_revoked").inc()
                continue  # neither run nor acknowledged: its partition's new owner has it
            reason = "already_finished" if verdict == "finished" else "running_here" if key in self.running else None
            if reason is not None:
                RECORDS_SKIPPED.labels(reason).inc()
                log.info("request not run again", reason=reason, job_id=(key or b"").decode(errors="replace"))
                await done()
                continue
            if key is not None:
                self.running.add(key)
            if verdict == "planned" and key is not None:
                work = _requeue_chunks(self.runtime, event, self.finished.recorded_chunks(event.message.partition, key))
            else:
                work = _run_requested(self.runtime, event)
            task = asyncio.ensure_future(work)
            self.tasks[task] = event.message.partition
            try:
                await task
            finally:
                self.running.discard(key or b"")
                self.tasks.pop(task, None)
            self.finished.ended_here(key)  # reached only when the attempt ended and the log holds its outcome
            await done()

    async def settle(self, partitions: set[int], patience: float) -> tuple[int, int]:
        """At a revocation: lets the jobs of ``partitions`` running here finish for up to ``patience`` seconds, so
        that their outcomes are in the log before the partitions' new owners read it. A longer job goes on (stopping
        it restarted sweeps at every rebalance, and one CI run's sweep never finished): its new owner may run it
        too, at least once. How many finished and how many were still running."""
        return await settle(self.tasks, partitions, patience)


async def settle(running: dict[asyncio.Future[None], int], partitions: set[int], patience: float) -> tuple[int, int]:
    """Waits up to ``patience`` seconds for the ``running`` tasks (task: partition) of ``partitions``; how many
    finished and how many were still running."""
    tasks = [task for task, partition in running.items() if partition in partitions]
    if not tasks:
        return 0, 0
    _, pending = await asyncio.wait(tasks, timeout=patience)
    return len(tasks) - len(pending), len(pending)


async def _requeue_chunks(runtime: WorkerRuntime, event: Any, recorded: set[int]) -> None:
    """A sweep request read again after its plan: its chunks without results are queued again, in case the worker
    that planned it died before queueing them all (``finished_requests``)."""
    request = decode(event.value)  # it was read when it was planned
    if not isinstance(request, JobRequested):
        return
    services = await runtime.services()
    with bound_contextvars(
        job_id=str(request.job_id), tenant_id=request.tenant_id, correlation_id=request.correlation_id
    ):
        RECORDS_SKIPPED.labels("planned_already").inc()
        try:
            await services.planner.requeue(request, recorded)
        except Exception as exc:  # the sweep waits for chunks that may be missing; say so, and go on with others
            log.error("sweep chunks could not be queued again", error=repr(exc)[:300])


async def _run_requested(runtime: WorkerRuntime, event: Any) -> None:
    try:
        request = decode(event.value)
        if not isinstance(request, JobRequested):
            raise UndecodableEvent(f"header says JobRequested, the value is a {request.event_type}")
    except UndecodableEvent as exc:
        await _dead_letter(runtime, event, exc, stage="decode")
        return
    runner = await runtime.runner()
    await runner.run(request)


async def _run_retry(
    runtime: WorkerRuntime, event: Any, finished: FinishedRetries, running: dict[asyncio.Future[None], int]
) -> bool:
    """Runs a retry once it is due, unless its attempt already ended; whether it is to be acknowledged (not when its
    partition went to another worker, which then has it)."""
    try:
        retry = RetryRequest.model_validate_json(event.value)
    except ValueError as exc:
        await _dead_letter(runtime, event, exc, stage="decode")
        return True
    partition = event.message.partition
    job_id = str(retry.request.job_id)
    verdict = await finished.verdict(partition, retry_key(job_id.encode(), retry.attempt))
    if verdict == "revoked":
        RECORDS_SKIPPED.labels("partition_revoked").inc()
        return False
    if verdict == "finished":
        RECORDS_SKIPPED.labels("already_finished").inc()
        log.info("retry not run again", reason="already_finished", job_id=job_id, attempt=retry.attempt)
        return True
    tenure = finished.tenure(partition)
    # Waiting here holds only this retry (the agent runs many at once), never the job's own partition.
    wait = (retry.due_at - datetime.now(UTC)).total_seconds()
    if wait > 0:
        await asyncio.sleep(wait)
    if not finished.still_holds(partition, tenure):
        # The partition changed hands while the retry waited: its next owner reads it again and runs it.
        RECORDS_SKIPPED.labels("partition_revoked").inc()
        return False
    runner = await runtime.runner()
    # Tracked so that a revocation lets it finish before the partition's next owner reads the tail.
    task: asyncio.Future[None] = asyncio.ensure_future(_attempt(runner, retry))
    running[task] = partition
    try:
        await task
    finally:
        running.pop(task, None)
    return True


async def _attempt(runner: JobRunner, retry: RetryRequest) -> None:
    await runner.run(retry.request, retry.attempt, retry.history)


async def _dead_letter(runtime: WorkerRuntime, event: Any, exc: Exception, stage: str) -> None:
    """A record no worker can read: to the dead-letter topic, with where it was and why; the partition goes on."""
    message = event.message
    origin = Origin(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=event.key,
        value=event.value,
        headers=_headers(event.headers),
    )
    RECORDS_SKIPPED.labels("dead_lettered").inc()
    log.error(
        "record dead-lettered",
        stage=stage,
        error=str(exc)[:500],
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )
    services = await runtime.services()
    await services.dead_letters.send(origin, type(exc).__name__, str(exc), stage)


def _headers(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> list[tuple[str, bytes]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(key, value if isinstance(value, bytes) else str(value).encode()) for key, value in items]
