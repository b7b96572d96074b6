"""The worker's side of sweeps: a Faust agent that runs chunks from the work topic, and the collector's steps.

The collector itself (``processors.sweeps.collector_service``) folds sweeps from the event log with a consumer of
its own; this module gives it the two things it does to the world: report progress, and finish a sweep.
"""

import time
import traceback
from typing import Any

import faust

from kernel.consumer_loop import ConsumerLoop
from kernel.kafka import make_consumer
from kernel.logging import bound_contextvars, get_logger
from kernel.settings import Settings
from processors.agents import acked_when_done
from processors.emit import emit
from processors.finished_work import FinishedChunks
from processors.metrics import RECORDS_SKIPPED, SWEEPS_FINISHED
from processors.runtime import WorkerRuntime
from processors.sweeps.collector_service import SweepCollector, collector_loop, read_ended_ahead
from schemas.events import (
    JobCancelled,
    JobCancelledPayload,
    JobCancelRequested,
    JobCompleted,
    JobCompletedPayload,
    JobFailed,
    JobFailedPayload,
    JobProgressed,
    JobProgressedPayload,
    SweepCallbackReceived,
    SweepResultsRecorded,
    SweepResultsRecordedPayload,
)
from schemas.sweeps import SweepChunk

log = get_logger(__name__)
COLLECTOR_GROUP = "zixly-sweep-collector"
# The collector reads the whole job topic for the few sweep events in it, beside the agents on one event loop. Fetches
# that answer at the first new record cost it a fetch response per handful of records on a busy topic; the agents
# ran 0.9x the noop jobs per second (`zixly bench worker`). The broker now gathers up to 256 KB (about 500 events),
# or a quarter of a second's worth, per answer.
COLLECTOR_FETCH = {"fetch_min_bytes": 256 * 1024, "fetch_max_wait_ms": 250}


def register_sweep_agents(app: faust.App, runtime: WorkerRuntime, settings: Settings) -> None:
    chunks_topic_name = settings.sweep_chunks_topic
    chunks_topic = app.topic(
        settings.sweep_chunks_topic,
        value_type=bytes,
        key_type=bytes,
        partitions=settings.topic_partitions,
        internal=False,
    )

    finished = FinishedChunks()

    @app.agent(chunks_topic, concurrency=max(1, settings.sweep_chunk_concurrency), name="zixly.run-sweep-chunks")
    async def run_sweep_chunks(stream: Any) -> None:
        async for record, done in acked_when_done(stream):
            verdict = await finished.chunk_verdict(record.message.partition, record.key)
            if verdict == "revoked":
                RECORDS_SKIPPED.labels("partition_revoked").inc()
                continue  # its partition's new owner runs it
            if verdict == "finished":
                RECORDS_SKIPPED.labels("already_finished").inc()
                log.info("sweep chunk not run again", key=(record.key or b"").decode(errors="replace"))
            else:
                await _run_chunk(runtime, record)
            await done()

    @app.on_partitions_revoked.connect
    async def forget_revoked_chunks(_sender: Any, /, *revoked: Any, **__: Any) -> None:
        finished.forget({tp.partition for tp in (revoked[0] if revoked else ()) if tp.topic == chunks_topic_name})

    @app.on_partitions_assigned.connect
    async def learn_finished_chunks(_sender: Any, /, *assigned: Any, **__: Any) -> None:
        # A chunk whose results were recorded just before a crash, its offset not yet committed, is not recomputed.
        partitions = sorted(tp.partition for tp in (assigned[0] if assigned else ()) if tp.topic == chunks_topic_name)
        try:
            await finished.learn(settings, app.conf.id, partitions)
        except Exception as exc:  # without it a handed-over chunk may run twice; its results are folded once
            log.warning("could not learn the finished chunks of assigned partitions", error=repr(exc)[:300])

    collector = SweepCollector(
        report=lambda event, state: report_progress(runtime, event, state),
        finish=lambda event, state: finish_sweep(runtime, event, state),
        relay=lambda event, state: relay_callback(runtime, event, state),
        cancel=lambda event, state: cancel_sweep(runtime, event, state),
        top_cells=settings.sweep_top_cells,
    )
    services: list[ConsumerLoop] = []

    @app.task
    async def collect_sweeps() -> None:
        # The consumer is made here, in the worker's running loop, not when the app is built.
        service = collector_loop(
            make_consumer(settings, group_id=COLLECTOR_GROUP, **COLLECTOR_FETCH),
            collector,
            settings.job_events_topic,
            ended_ahead=lambda partitions: read_ended_ahead(settings, COLLECTOR_GROUP, partitions),
        )
        services.append(service)
        await service.run()

    @app.on_before_shutdown.connect
    async def stop_collector(_sender: Any, /, *_: Any, **__: Any) -> None:
        for service in services:
            service.stop()


async def _run_chunk(runtime: WorkerRuntime, record: Any) -> None:
    try:
        chunk = SweepChunk.model_validate_json(record.value)
    except ValueError as exc:
        RECORDS_SKIPPED.labels("undecodable_chunk").inc()
        log.error("skipping undecodable chunk", error=str(exc)[:500], offset=record.message.offset)
        return
    services = await runtime.services()
    await services.chunks.run(chunk, record.value)


async def report_progress(runtime: WorkerRuntime, event: SweepResultsRecorded, state: dict[str, Any]) -> None:
    services = await runtime.services()
    done, total = len(state["done"]), state["chunk_count"]
    await services.publisher.publish(
        emit(
            event,
            JobProgressed,
            fact=f"sweep-progress:{done}",
            payload=JobProgressedPayload(
                attempt=state["attempt"],
                progress=done / total,
                message=f"{done}/{total} chunks, {state['rows']:,} of {state['backtest_count']:,} backtests",
            ),
        )
    )


async def finish_sweep(runtime: WorkerRuntime, event: SweepResultsRecorded, state: dict[str, Any]) -> None:
    services = await runtime.services()
    t0 = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - t0) * 1000

    with bound_contextvars(job_id=str(event.job_id), tenant_id=event.tenant_id, correlation_id=event.correlation_id):
        outcome: JobCompleted | JobFailed
        try:
            summary = await services.finisher.summary(str(event.job_id), event.tenant_id, state)
            outcome = emit(
                event,
                JobCompleted,
                fact="sweep-completed",
                payload=JobCompletedPayload(
                    attempt=state["attempt"], result=summary, duration_ms=summary["elapsed_seconds"] * 1000
                ),
            )
            log.info("sweep completed", backtests=state["rows"], finish_ms=round(elapsed_ms(), 1))
        except Exception as exc:  # the job fails; the collector goes on with other sweeps
            log.warning("sweep could not be finished", error_type=type(exc).__name__, error=str(exc)[:500])
            outcome = emit(
                event,
                JobFailed,
                fact="sweep-failed",
                payload=JobFailedPayload(
                    attempt=state["attempt"],
                    error_type=type(exc).__name__,
                    error_message=str(exc)[:10_000] or repr(exc),
                    error_detail=traceback.format_exc(),
                    retryable=True,
                    duration_ms=elapsed_ms(),
                ),
            )
        await services.publisher.publish(outcome)
        SWEEPS_FINISHED.labels("completed" if isinstance(outcome, JobCompleted) else "failed").inc()


async def relay_callback(runtime: WorkerRuntime, event: SweepCallbackReceived, state: dict[str, Any]) -> None:
    """An external sweep's callback becomes its one chunk of results (collected as usual) or its failure."""
    services = await runtime.services()
    outcome: SweepResultsRecorded | JobFailed
    if event.payload.status == "completed":
        outcome = emit(
            event,
            SweepResultsRecorded,
            fact=f"sweep-results:{event.payload.part_index}",
            payload=SweepResultsRecordedPayload(
                chunk_index=event.payload.part_index,
                chunk_count=event.payload.part_count,
                rows=event.payload.rows,
                worker=f"external:{event.payload.external_reference}"[:128],
                duration_ms=0.0,
            ),
        )
    else:
        outcome = emit(
            event,
            JobFailed,
            fact="sweep-failed",
            payload=JobFailedPayload(
                attempt=state["attempt"],
                error_type="ExternalSweepFailed",
                error_message=(event.payload.error or "no reason given")[:10_000],
                retryable=False,
                duration_ms=0.0,
            ),
        )
    await services.publisher.publish(outcome)


async def cancel_sweep(runtime: WorkerRuntime, event: JobCancelRequested, state: dict[str, Any]) -> None:
    services = await runtime.services()
    done, total = len(state["done"]), state["chunk_count"]
    await services.publisher.publish(
        emit(
            event,
            JobCancelled,
            fact="cancelled",
            payload=JobCancelledPayload(
                attempt=state["attempt"], reason=event.payload.reason or f"cancelled after {done}/{total} chunks"
            ),
        )
    )
