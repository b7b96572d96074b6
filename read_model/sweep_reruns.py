"""Re-running a sweep and proving it reproduces: the same request again, then its inputs and its whole result table
compared with the original's.

A sweep's inputs are its request (the resolved grid and every sweep setting), the prices (one fingerprint per
ticker), the engine's code version and the worker settings it ran with, all in its SweepPlanned event. When they
all match, every result row must be bit-identical; when one does not, the report names it and still says how far
the results moved.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from schemas.events import JobRequested, JobRequestedPayload, SweepPlanned, derived_event_id
from schemas.read_model import trading_sweep_results
from schemas.sweeps import SWEEP_JOB_TYPE

PRODUCER = "cli"
# Every stored value of a result row but whose and where from (job, tenant, the chunk and event that carried it,
# when it was recorded): what "bit-identical" compares. The parameters are compared as their canonical key.
_NOT_COMPARED = {"job_id", "tenant_id", "parameters", "chunk_index", "event_id", "recorded_at"}
RESULT_COLUMNS = tuple(column.name for column in trading_sweep_results.columns if column.name not in _NOT_COMPARED)


class NotASweep(Exception):
    """The job does not exist, is not a sweep, or has no plan to compare with."""


@dataclass(frozen=True)
class SweepInputs:
    job_id: uuid.UUID
    tenant_id: str
    correlation_id: str
    status: str
    parameters: dict[str, Any]
    metadata: dict[str, str]
    prices: dict[str, str]
    """Ticker -> sha256 of the prices the sweep ran on."""
    engine_version: str | None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResultComparison:
    rows: int
    rows_again: int
    differing: int
    """Rows of either run without a bit-identical twin in the other (a row that moved counts once per run)."""
    examples: list[str]

    @property
    def identical(self) -> bool:
        return self.differing == 0 and self.rows == self.rows_again


@dataclass(frozen=True)
class RerunReport:
    changes: list[str]
    """The inputs that differ from the original's, one line each."""
    results: ResultComparison
    again: SweepInputs

    @property
    def verdict(self) -> str:
        rows = f"{self.results.rows:,} rows against {self.results.rows_again:,}"
        if self.changes:
            moved = "identical all the same" if self.results.identical else f"{self.results.differing:,} rows differ"
            return f"inputs changed: {'; '.join(self.changes)}. Results: {rows}, {moved}."
        if self.results.identical:
            return (
                f"reproduced: same request, prices, engine ({self.again.engine_version or 'not recorded'}) and "
                f"settings; all {self.results.rows:,} result rows bit-identical"
            )
        return f"not reproduced: the inputs match, yet {self.results.differing:,} rows differ ({rows})"


def read_inputs(connection: Connection, job_id: uuid.UUID) -> SweepInputs:
    """A sweep's inputs from the read model: its row and its (latest) plan."""
    job = (
        connection.execute(
            text(
                "SELECT tenant_id, correlation_id, job_type, status, parameters, metadata "
                "FROM pipeline_jobs WHERE id = :id"
            ),
            {"id": job_id},
        )
        .mappings()
        .first()
    )
    if job is None:
        raise NotASweep(f"no job {job_id} in the read model")
    if job["job_type"] != SWEEP_JOB_TYPE:
        raise NotASweep(f"job {job_id} is a {job['job_type']} job, not a {SWEEP_JOB_TYPE}")
    plan = connection.execute(
        text(
            "SELECT payload FROM job_events WHERE job_id = :id AND event_type = :type ORDER BY log_offset DESC LIMIT 1"
        ),
        {"id": job_id, "type": SweepPlanned.TYPE},
    ).scalar_one_or_none()
    if plan is None:
        raise NotASweep(f"sweep {job_id} was never planned here (an external sweep, or one that failed before)")
    return SweepInputs(
        job_id=job_id,
        tenant_id=job["tenant_id"],
        correlation_id=job["correlation_id"],
        status=job["status"],
        parameters=job["parameters"],
        metadata=job["metadata"] or {},
        prices={data["ticker"]: data["sha256"] for data in plan["data"]},
        engine_version=plan.get("engine_version"),
        settings=plan.get("settings") or {},
    )


def rerun_request(original: SweepInputs, nonce: str) -> JobRequested:
    """The same sweep again as a new job of the same tenant; ``nonce`` names the re-run (one job per nonce)."""
    job_id = uuid.uuid5(original.job_id, f"rerun:{nonce}")
    return JobRequested(
        event_id=derived_event_id(job_id, "requested"),
        tenant_id=original.tenant_id,
        job_id=job_id,
        correlation_id=original.correlation_id,
        producer=PRODUCER,
        payload=JobRequestedPayload(
            job_type=SWEEP_JOB_TYPE,
            parameters=original.parameters,
            metadata={**original.metadata, "rerun_of": str(original.job_id)},
        ),
    )


def changed_inputs(original: SweepInputs, again: SweepInputs) -> list[str]:
    """What differs between two sweeps' inputs, one line each; empty when they match."""
    changes = []
    if original.parameters != again.parameters:
        fields = sorted(
            name
            for name in set(original.parameters) | set(again.parameters)
            if original.parameters.get(name) != again.parameters.get(name)
        )
        changes.append(f"the request: {', '.join(fields)}")
    for ticker in sorted(set(original.prices) | set(again.prices)):
        before, after = original.prices.get(ticker), again.prices.get(ticker)
        if before != after:
            changes.append(f"{ticker}'s prices: sha256 {_short(before)} → {_short(after)}")
    if original.engine_version != again.engine_version:
        changes.append(f"the engine: {original.engine_version or 'not recorded'} → {again.engine_version}")
    for name in sorted(set(original.settings) | set(again.settings)):
        if original.settings.get(name) != again.settings.get(name):
            changes.append(f"setting {name}: {original.settings.get(name)} → {again.settings.get(name)}")
    return changes


def compare_results(
    connection: Connection, original: uuid.UUID, again: uuid.UUID, examples: int = 5
) -> ResultComparison:
    """Both result tables, row against row on every stored value (Postgres compares doubles bit for bit, and
    EXCEPT holds two NULLs equal)."""
    columns = ", ".join(RESULT_COLUMNS)
    counts = connection.execute(
        text(
            "SELECT count(*) FILTER (WHERE job_id = :a), count(*) FILTER (WHERE job_id = :b) "
            "FROM trading_sweep_results WHERE job_id IN (:a, :b)"
        ),
        {"a": original, "b": again},
    ).one()
    differing_sql = (
        f"(SELECT {columns} FROM trading_sweep_results WHERE job_id = :a "
        f"EXCEPT ALL SELECT {columns} FROM trading_sweep_results WHERE job_id = :b) "
        f"UNION ALL (SELECT {columns} FROM trading_sweep_results WHERE job_id = :b "
        f"EXCEPT ALL SELECT {columns} FROM trading_sweep_results WHERE job_id = :a)"
    )
    differing = connection.execute(
        text(f"SELECT count(*) FROM ({differing_sql}) AS differing"), {"a": original, "b": again}
    ).scalar_one()
    shown = connection.execute(
        text(f"SELECT ticker, strategy_type, parameters_key FROM ({differing_sql}) AS differing LIMIT :n"),
        {"a": original, "b": again, "n": examples},
    ).all()
    return ResultComparison(
        rows=counts[0],
        rows_again=counts[1],
        differing=differing,
        examples=[f"{ticker} {strategy} {key}" for ticker, strategy, key in shown],
    )


def rerun_report(connection: Connection, original: uuid.UUID, again: uuid.UUID) -> RerunReport:
    """How a re-run compares with its original: the inputs that changed, and the result rows that differ."""
    first, second = read_inputs(connection, original), read_inputs(connection, again)
    return RerunReport(changed_inputs(first, second), compare_results(connection, original, again), second)


def _short(digest: str | None) -> str:
    return f"{digest[:12]}…" if digest else "none"
