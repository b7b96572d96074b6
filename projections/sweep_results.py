"""What a sweep's results events become in the read model: one ``trading_sweep_results`` row per backtest.

The timeline (``job_events``) keeps such an event without its rows, which are in the results table already.
"""

import json
from typing import Any

from schemas.events import Event, SweepCallbackReceived, SweepResultsRecorded

METRIC_COLUMNS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown", "win_rate")
COLUMNS = (
    "job_id", "tenant_id", "ticker", "strategy_type", "parameters_key", "parameters", "score", *METRIC_COLUMNS,
    "trades", "exposure", "chunk_index", "event_id", "recorded_at",
)  # fmt: skip

ResultRow = tuple[Any, ...]


def parameters_key(parameters: dict[str, float]) -> str:
    return ",".join(f"{name}={value:g}" for name, value in sorted(parameters.items()))


def result_rows(event: SweepResultsRecorded) -> list[ResultRow]:
    """Rows in ``COLUMNS`` order, with the parameters as JSON text (ready for COPY)."""
    payload = event.payload
    return [
        (
            event.job_id,
            event.tenant_id,
            row.ticker,
            row.strategy_type.value,
            parameters_key(row.parameters),
            json.dumps(row.parameters, sort_keys=True),
            row.score,
            *(row.metrics.get(name) for name in METRIC_COLUMNS),
            int(row.metrics.get("trades") or 0),
            row.metrics.get("exposure") or 0.0,
            payload.chunk_index,
            event.event_id,
            event.occurred_at,
        )
        for row in payload.rows
    ]


def timeline_payload(event: Event) -> str:
    """The payload as stored in ``job_events``."""
    if isinstance(event, SweepResultsRecorded | SweepCallbackReceived):
        trimmed = event.payload.model_dump(mode="json", exclude={"rows"})
        return json.dumps({**trimmed, "row_count": len(event.payload.rows)})
    return event.payload.model_dump_json()
