"""What a sweep's results events become in the read model: one ``trading_sweep_results`` row per backtest.

The timeline (``job_events``) keeps such an event without its rows, which are in the results table already.
"""

import json
from typing import Any

from schemas.events import Event, SweepCallbackReceived, SweepResultsRecorded
from schemas.sweeps import parameters_key

METRIC_COLUMNS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown", "win_rate")
COLUMNS = (
    "job_id",
    "tenant_id",
    "ticker",
    "strategy_type",
    "fold",
    "parameters_key",
    "parameters",
    "score",
    *METRIC_COLUMNS,
    "trades",
    "exposure",
    "chunk_index",
    "event_id",
    "recorded_at",
)
# A row's identity within the table, as a slice of COLUMNS: job, tenant, ticker, strategy, fold, parameters (the
# tenant follows the job).
KEY = slice(0, 6)

ResultRow = tuple[Any, ...]


# json.dumps(..., sort_keys=True) builds an encoder on every call; this one gives the very same text.
_parameters_json = json.JSONEncoder(sort_keys=True).encode


def result_rows(event: SweepResultsRecorded) -> list[ResultRow]:
    """Rows in ``COLUMNS`` order, with the parameters as JSON text (ready for COPY).

    A million-backtest sweep makes a million of these in the projector and in a replay, so what every row of an
    event shares is computed once (the ids as text spare psycopg's Python UUID dumper a call per row and column).
    """
    payload = event.payload
    job_id, event_id, chunk_index = str(event.job_id), str(event.event_id), payload.chunk_index
    tenant_id, occurred_at = event.tenant_id, event.occurred_at
    fold = payload.fold or 0
    rows: list[ResultRow] = []
    for row in payload.rows:
        metrics = row.metrics
        rows.append(
            (
                job_id,
                tenant_id,
                row.ticker,
                row.strategy_type.value,
                fold,
                parameters_key(row.parameters),
                _parameters_json(row.parameters),
                row.score,
                *[metrics.get(name) for name in METRIC_COLUMNS],
                int(metrics.get("trades") or 0),
                metrics.get("exposure") or 0.0,
                chunk_index,
                event_id,
                occurred_at,
            )
        )
    return rows


def timeline_payload(event: Event) -> str:
    """The payload as stored in ``job_events``."""
    if isinstance(event, SweepResultsRecorded | SweepCallbackReceived):
        trimmed = event.payload.model_dump(mode="json", exclude={"rows"})
        return json.dumps({**trimmed, "row_count": len(event.payload.rows)})
    return event.payload.model_dump_json()
