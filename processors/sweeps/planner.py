"""The sweep job's handler: load and fingerprint the data, cut the grid into chunks, queue them, and defer.

The job completes when the collector has seen every chunk's results, on whichever workers they ran.
"""

import asyncio
import uuid
from typing import Any

from kernel.logging import get_logger
from kernel.publisher import KafkaRecordSender
from market_data.series import MarketDataError
from processors.backtest.version import engine_version
from processors.emit import emit
from processors.jobs.context import DEFERRED, Deferred, JobContext, JobError
from processors.sweeps.compute import MarketDataConfig, fingerprints
from processors.sweeps.external import ExternalDispatcher
from processors.sweeps.grid import ChunkPlan, plan_chunks
from schemas.events import (
    Event,
    JobRequested,
    SweepDispatched,
    SweepDispatchedPayload,
    SweepPlanned,
    SweepPlannedPayload,
    derived_event_id,
)
from schemas.sweeps import DataFingerprint, SweepChunk, TradingSweepParameters, chunk_record_key, walk_forward_problem

log = get_logger(__name__)


def _bars_with_folds(parameters: TradingSweepParameters, data: list[DataFingerprint]) -> dict[str, int]:
    """Each ticker's bar count, once a walk-forward has been checked to fit: at least one fold, at most MAX_FOLDS.
    The receiver checks the same for the sources it can read quickly; the HTTP source is only read here."""
    bars = {fingerprint.ticker: fingerprint.bars for fingerprint in data}
    walk_forward = parameters.walk_forward
    if walk_forward is not None:
        for ticker, count in bars.items():
            problem = walk_forward_problem(walk_forward, ticker, count)
            if problem:
                raise JobError(problem, retryable=False)
    return bars


class SweepPlanner:
    def __init__(
        self,
        sender: KafkaRecordSender,
        chunks_topic: str,
        chunk_size: int,
        market_data: MarketDataConfig,
        external: ExternalDispatcher,
        top_cells: int,
    ) -> None:
        self._top_cells = top_cells
        self._external = external
        self._sender = sender
        self._topic = chunks_topic
        self._chunk_size = chunk_size
        self._market_data = market_data

    async def __call__(self, parameters: TradingSweepParameters, context: JobContext) -> dict[str, Any] | Deferred:
        if parameters.execution == "external":
            self._external.service_for(context.tenant_id)  # fail before loading data when there is none
        try:
            # Reading files or calling an API: a thread, so heartbeats and other jobs go on meanwhile.
            data = await asyncio.to_thread(fingerprints, self._market_data, parameters)
        except MarketDataError as exc:
            raise JobError(str(exc), retryable=exc.retryable) from exc
        if parameters.execution == "external":
            return await self._dispatch(parameters, data, context)
        plans = plan_chunks(parameters, self._chunk_size, _bars_with_folds(parameters, data))
        started = context.started
        planned = emit(
            started,
            SweepPlanned,
            fact=f"sweep-planned:{context.attempt}",
            payload=SweepPlannedPayload(
                attempt=context.attempt,
                chunk_count=len(plans),
                backtest_count=sum(p.size for p in plans),
                data=data,
                parameters=parameters.model_dump(mode="json"),
                engine_version=engine_version(),
                settings={"sweep_chunk_size": self._chunk_size, "sweep_top_cells": self._top_cells},
            ),
        )
        # The plan goes on the job's own partition before any chunk exists, so the collector always knows how many
        # chunks to wait for before the first result arrives. A planner that dies before every chunk is queued leaves
        # the rest to whoever reads its request again (``requeue``).
        await context.publish(planned)
        records = self._chunk_records(started, planned.event_id, parameters, data, plans, skip=set())
        await self._sender.send_all(self._topic, records)
        log.info("sweep planned", chunks=len(plans), backtests=planned.payload.backtest_count)
        return DEFERRED

    async def requeue(self, request: JobRequested, recorded: set[int]) -> int:
        """Queues again the chunks of a sweep planned by a worker that may have died before queueing them all (its
        request came back after the plan): every chunk but the ``recorded`` ones, which already have results. How
        many were queued. Chunks that were queued already run twice at most; their results fold once."""
        parameters = TradingSweepParameters.model_validate(request.payload.parameters)
        try:
            data = await asyncio.to_thread(fingerprints, self._market_data, parameters)
        except MarketDataError as exc:  # the chunks would fail on it too; the sweep waits as it would have
            log.warning("sweep chunks not queued again: its data cannot be read", error=str(exc)[:300])
            return 0
        try:
            plans = plan_chunks(parameters, self._chunk_size, _bars_with_folds(parameters, data))
        except JobError as exc:  # the planner refused it as well: the job has failed already
            log.warning("sweep chunks not queued again", error=str(exc)[:300])
            return 0
        # A request read again from the job events topic is a first attempt (retries come from the retries topic,
        # whose planner gap is not covered: docs/reliability.md), so its plan is attempt 1's.
        planned_id = derived_event_id(request.job_id, "sweep-planned:1")
        records = self._chunk_records(request, planned_id, parameters, data, plans, skip=recorded)
        await self._sender.send_all(self._topic, records)
        log.info("sweep chunks queued again", chunks=len(records), already_recorded=len(recorded))
        return len(records)

    @staticmethod
    def _chunk_records(
        origin: Event,
        planned_id: uuid.UUID,
        parameters: TradingSweepParameters,
        data: list[DataFingerprint],
        plans: list[ChunkPlan],
        skip: set[int],
    ) -> list[tuple[bytes, bytes]]:
        by_ticker = {fingerprint.ticker: fingerprint for fingerprint in data}
        records = []
        for index, plan in enumerate(plans):
            if index in skip:
                continue
            chunk = SweepChunk(
                job_id=origin.job_id,
                tenant_id=origin.tenant_id,
                correlation_id=origin.correlation_id,
                causation_id=planned_id,
                chunk_index=index,
                chunk_count=len(plans),
                ticker=plan.ticker,
                strategy_index=plan.strategy_index,
                start=plan.start,
                stop=plan.stop,
                data=by_ticker[plan.ticker],
                parameters=parameters,
                fold=plan.fold,
            )
            records.append((chunk_record_key(str(origin.job_id), index), chunk.model_dump_json().encode()))
        return records

    async def _dispatch(
        self, parameters: TradingSweepParameters, data: list[DataFingerprint], context: JobContext
    ) -> Deferred:
        service, reference = await self._external.dispatch(parameters, data, context)
        started = context.started
        await context.publish(
            emit(
                started,
                SweepDispatched,
                fact=f"sweep-dispatched:{context.attempt}",
                payload=SweepDispatchedPayload(
                    attempt=context.attempt,
                    service_url=service,
                    external_reference=reference,
                    backtest_count=len(parameters.tickers) * parameters.combination_count(),
                    data=data,
                    parameters=parameters.model_dump(mode="json"),
                ),
            )
        )
        return DEFERRED
