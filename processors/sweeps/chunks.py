"""Running one chunk of a sweep (any worker of the group may get it) and recording its results."""

import asyncio
import time
import traceback
from concurrent.futures import Executor
from typing import TypeVar

from kernel.logging import bound_contextvars, get_logger
from kernel.object_store import ObjectStore, tenant_prefix
from kernel.publisher import EventPublisher
from market_data.series import MarketDataError
from processors.emit import emit
from processors.metrics import SWEEP_BACKTESTS, SWEEP_CHUNK_SECONDS, SWEEP_CHUNKS
from processors.sweeps.compute import DataChanged, MarketDataConfig, run_chunk
from schemas.events import (
    JobFailed,
    JobFailedPayload,
    SweepResultsRecorded,
    SweepResultsRecordedPayload,
    derived_event_id,
)
from schemas.sweeps import SweepChunk, SweepResultRow

log = get_logger(__name__)
_Outcome = TypeVar("_Outcome", SweepResultsRecorded, JobFailed)


def results_prefix(tenant_id: str, job_id: str) -> str:
    return f"{tenant_prefix(tenant_id)}jobs/{job_id}/results/"


class ChunkWorker:
    def __init__(
        self,
        publisher: EventPublisher,
        store: ObjectStore,
        cpu: Executor,
        market_data: MarketDataConfig,
        worker_id: str,
    ) -> None:
        self._publisher = publisher
        self._store = store
        self._cpu = cpu
        self._market_data = market_data
        self._worker_id = worker_id

    async def run(self, chunk: SweepChunk, as_received: bytes) -> SweepResultsRecorded | JobFailed:
        """Runs the chunk and appends its outcome; a redelivered chunk appends the very same event again.

        The pool process is handed the record's bytes as they came off the log, which it parses itself: dumping the
        parsed chunk to hand it over cost a serialisation per chunk for nothing."""
        with bound_contextvars(
            job_id=str(chunk.job_id),
            tenant_id=chunk.tenant_id,
            correlation_id=chunk.correlation_id,
            chunk=chunk.chunk_index,
        ):
            t0 = time.perf_counter()
            outcome: SweepResultsRecorded | JobFailed
            try:
                loop = asyncio.get_running_loop()
                output = await loop.run_in_executor(self._cpu, run_chunk, as_received, self._market_data)
                key = f"{results_prefix(chunk.tenant_id, str(chunk.job_id))}part-{chunk.chunk_index:05d}.parquet"
                await asyncio.to_thread(self._store.put, key, output.parquet, "application/vnd.apache.parquet")
                outcome = self._envelope(
                    SweepResultsRecorded,
                    f"sweep-results:{chunk.chunk_index}",
                    chunk,
                    SweepResultsRecordedPayload(
                        chunk_index=chunk.chunk_index,
                        chunk_count=chunk.chunk_count,
                        rows=[SweepResultRow.model_validate(row) for row in output.rows],
                        artifact_key=key,
                        worker=self._worker_id,
                        duration_ms=(time.perf_counter() - t0) * 1000,
                        fold=chunk.fold,
                        first_combination=chunk.start,
                    ),
                )
                log.info("sweep chunk done", rows=len(output.rows), compute_ms=round(output.seconds * 1000, 1))
                SWEEP_BACKTESTS.inc(len(output.rows))
            except (DataChanged, MarketDataError) as exc:
                outcome = self._failure(chunk, exc, t0, retryable=isinstance(exc, MarketDataError) and exc.retryable)
            except Exception as exc:  # the chunk fails the job rather than stopping the worker's chunk stream
                outcome = self._failure(chunk, exc, t0, retryable=True, detail=traceback.format_exc())
            await self._publisher.publish(outcome)
            SWEEP_CHUNKS.labels("recorded" if isinstance(outcome, SweepResultsRecorded) else "failed").inc()
            SWEEP_CHUNK_SECONDS.observe(time.perf_counter() - t0)
            return outcome

    def _failure(
        self, chunk: SweepChunk, exc: Exception, t0: float, *, retryable: bool, detail: str | None = None
    ) -> JobFailed:
        log.warning("sweep chunk failed", error_type=type(exc).__name__, error=str(exc)[:500])
        return self._envelope(
            JobFailed,
            "sweep-failed",
            chunk,
            JobFailedPayload(
                attempt=1,
                error_type=type(exc).__name__,
                error_message=f"chunk {chunk.chunk_index}: {exc}"[:10_000],
                error_detail=detail,
                retryable=retryable,
                duration_ms=(time.perf_counter() - t0) * 1000,
            ),
        )

    def _envelope(self, event_type: type[_Outcome], fact: str, chunk: SweepChunk, payload: object) -> _Outcome:
        return event_type(
            event_id=derived_event_id(chunk.job_id, fact),
            tenant_id=chunk.tenant_id,
            job_id=chunk.job_id,
            correlation_id=chunk.correlation_id,
            causation_id=chunk.causation_id,
            producer=emit.producer,
            payload=payload,
        )
