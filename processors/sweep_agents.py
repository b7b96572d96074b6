"""The Faust side of sweeps: an agent that runs chunks from the work topic, and one that collects their results.

The collector's state is a table keyed by job id whose changelog Faust keeps, so a restarted or rebalanced worker
resumes a sweep where it was.
"""

import time
import traceback
from typing import Any

import faust

from kernel.logging import bound_contextvars, get_logger
from kernel.settings import Settings
from processors.agents import header_value
from processors.metrics import RECORDS_SKIPPED
from processors.runtime import WorkerRuntime
from processors.sweeps.collector import add_results, keep_per_cell, planned_state
from schemas.codec import EVENT_TYPE_HEADER, UndecodableEvent, decode
from schemas.events import (
    JobCompleted,
    JobCompletedPayload,
    JobFailed,
    JobFailedPayload,
    JobProgressed,
    JobProgressedPayload,
    SweepPlanned,
    SweepResultsRecorded,
    derived_event_id,
    follow_up,
)
from schemas.sweeps import SweepChunk

log = get_logger(__name__)
PRODUCER = "processor"
_COLLECTED_TYPES = {SweepPlanned.TYPE, SweepResultsRecorded.TYPE, JobFailed.TYPE}


def register_sweep_agents(app: faust.App, events_topic: Any, runtime: WorkerRuntime, settings: Settings) -> None:
    chunks_topic = app.topic(
        settings.sweep_chunks_topic, value_type=bytes, key_type=bytes, partitions=settings.topic_partitions,
        internal=False,
    )  # fmt: skip
    progress = app.Table(
        "sweep-progress",
        default=None,
        partitions=settings.topic_partitions,
        # Faust derives the changelog's serializers from these types: bytes keys are raw, other values JSON.
        key_type=bytes,
        help="Running sweeps: their plan, the chunks seen so far and the best rows.",
    )

    @app.agent(chunks_topic, concurrency=max(1, settings.sweep_chunk_concurrency), name="zixly.run-sweep-chunks")
    async def run_sweep_chunks(stream: Any) -> None:
        async for record in stream.events():
            try:
                chunk = SweepChunk.model_validate_json(record.value)
            except ValueError as exc:
                RECORDS_SKIPPED.labels("undecodable_chunk").inc()
                log.error("skipping undecodable chunk", error=str(exc)[:500], offset=record.message.offset)
                continue
            services = await runtime.services()
            await services.chunks.run(chunk)

    @app.agent(events_topic, concurrency=1, name="zixly.collect-sweeps")
    async def collect_sweeps(stream: Any) -> None:
        async for record in stream.events():
            if header_value(record.headers, EVENT_TYPE_HEADER) not in _COLLECTED_TYPES:
                continue
            try:
                event = decode(record.value)
            except UndecodableEvent:
                continue  # the job agent reports undecodable records
            key = str(event.job_id).encode()
            state = progress.get(key)
            if isinstance(event, SweepPlanned):
                if state is None:
                    progress[key] = planned_state(event)
            elif isinstance(event, JobFailed):
                if state is not None:
                    del progress[key]
            elif isinstance(event, SweepResultsRecorded):
                if state is None:
                    log.info("results for a sweep that is not running here (late or duplicate)",
                             job_id=str(event.job_id), chunk=event.payload.chunk_index)  # fmt: skip
                    continue
                collected = add_results(state, event, keep_per_cell(state["parameters"], settings.sweep_top_cells))
                if not collected.new:
                    continue
                progress[key] = collected.state
                await _report(runtime, event, collected.state)
                if collected.complete:
                    await _finish(runtime, event, collected.state)
                    del progress[key]


async def _report(runtime: WorkerRuntime, event: SweepResultsRecorded, state: dict[str, Any]) -> None:
    services = await runtime.services()
    done, total = len(state["done"]), state["chunk_count"]
    await services.publisher.publish(
        follow_up(
            event, JobProgressed, producer=PRODUCER,
            event_id=derived_event_id(event.job_id, f"sweep-progress:{done}"),
            payload=JobProgressedPayload(
                attempt=state["attempt"], progress=done / total,
                message=f"{done}/{total} chunks, {state['rows']:,} of {state['backtest_count']:,} backtests",
            ),
        )
    )  # fmt: skip


async def _finish(runtime: WorkerRuntime, event: SweepResultsRecorded, state: dict[str, Any]) -> None:
    services = await runtime.services()
    t0 = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - t0) * 1000

    with bound_contextvars(job_id=str(event.job_id), tenant_id=event.tenant_id, correlation_id=event.correlation_id):
        outcome: JobCompleted | JobFailed
        try:
            summary = await services.finisher.summary(str(event.job_id), event.tenant_id, state)
            outcome = follow_up(
                event, JobCompleted, producer=PRODUCER, event_id=derived_event_id(event.job_id, "sweep-completed"),
                payload=JobCompletedPayload(attempt=state["attempt"], result=summary,
                                            duration_ms=summary["elapsed_seconds"] * 1000),
            )  # fmt: skip
            log.info("sweep completed", backtests=state["rows"], finish_ms=round(elapsed_ms(), 1))
        except Exception as exc:  # the job fails; the collector goes on with other sweeps
            log.warning("sweep could not be finished", error_type=type(exc).__name__, error=str(exc)[:500])
            outcome = follow_up(
                event, JobFailed, producer=PRODUCER, event_id=derived_event_id(event.job_id, "sweep-failed"),
                payload=JobFailedPayload(attempt=state["attempt"], error_type=type(exc).__name__,
                                         error_message=str(exc)[:10_000] or repr(exc),
                                         error_detail=traceback.format_exc(), retryable=True,
                                         duration_ms=elapsed_ms()),
            )  # fmt: skip
        await services.publisher.publish(outcome)
