"""The end of a sweep: out-of-sample checks of the best candidates, equity curves of the best cells, the summary
in the object store and on the job's result."""

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any

from kernel.object_store import ObjectStore, tenant_prefix
from processors.sweeps.chunks import results_prefix
from processors.sweeps.collector import State, cell_key, keep_per_cell, planned_at
from processors.sweeps.compute import (
    CellReport,
    GridStability,
    MarketDataConfig,
    evaluate_cells,
    evaluate_walk_forward,
    grid_stability,
)
from processors.sweeps.ranking import Row, rank_key, robustness
from processors.sweeps.walk_forward import FoldChoice, WalkForwardOutcome
from schemas.sweeps import TradingSweepParameters, parameters_key


class SweepFinisher:
    def __init__(self, store: ObjectStore, cpu: Executor, market_data: MarketDataConfig, top_cells: int) -> None:
        self._store = store
        self._cpu = cpu
        self._market_data = market_data
        self._top_cells = top_cells

    async def summary(self, job_id: str, tenant_id: str, state: State) -> dict[str, Any]:
        parameters = TradingSweepParameters.model_validate(state["parameters"])
        top_n = parameters.split.top_n if parameters.split else 0
        job_prefix = f"{tenant_prefix(tenant_id)}jobs/{job_id}/"
        per_ticker = []
        curves = []
        loop = asyncio.get_running_loop()
        for fingerprint in state["data"]:
            if parameters.walk_forward is not None:
                entry, curve_keys = await self._walk_forward(parameters, fingerprint, state, job_prefix)
                per_ticker.append(entry)
                curves.extend(curve_keys)
                continue
            ticker = fingerprint["ticker"]
            cells = {
                grid.type.value: await self._stable(
                    parameters,
                    fingerprint,
                    state,
                    grid.type.value,
                    None,
                    state["top"].get(cell_key(ticker, grid.type.value), []),
                )
                for grid in parameters.strategies
            }
            best_cells = sorted((row for rows in cells.values() for row in rows), key=_ranking(parameters))[
                : self._top_cells
            ]
            candidates: list[tuple[Row, bool]] = [(row, False) for rows in cells.values() for row in rows[:top_n]]
            chosen = _dedupe([*[(row, True) for row in best_cells], *candidates])
            reports: list[CellReport] = await loop.run_in_executor(
                self._cpu,
                evaluate_cells,
                parameters.model_dump_json(),
                ticker,
                fingerprint["sha256"],
                fingerprint["periods_per_year"],
                [(row["strategy_type"], row["parameters"], with_curve) for row, with_curve in chosen],
                self._market_data,
            )
            reported = {_identity(row): report for (row, _), report in zip(chosen, reports, strict=True)}
            best_out = []
            for rank, row in enumerate(best_cells, start=1):
                report = reported[_identity(row)]
                name = f"{rank:02d}-{row['strategy_type']}-{_slug(row['parameters'])}"
                key = f"{job_prefix}equity/{ticker}/{name}.parquet"
                if report.curve is not None:
                    await asyncio.to_thread(self._store.put, key, report.curve, "application/vnd.apache.parquet")
                    curves.append(key)
                best_out.append({**row, "rank": rank, "out_of_sample": report.out_of_sample, "equity_curve_key": key})
            strategies_out = []
            for strategy_type, rows in cells.items():
                stats = state["stats"].get(cell_key(ticker, strategy_type))
                strategies_out.append(
                    {
                        "strategy_type": strategy_type,
                        "signal": parameters.grid_of(strategy_type).signal.value,
                        "best": rows[0] if rows else None,
                        "robustness": robustness(stats, rows[0]["score"] if rows else None) if stats else None,
                        "out_of_sample": [
                            {
                                "parameters": row["parameters"],
                                "in_sample_score": row["score"],
                                "out_of_sample": reported[_identity(row)].out_of_sample,
                            }
                            for row in rows[:top_n]
                        ],
                    }
                )
            per_ticker.append(
                {"ticker": ticker, "data_sha256": fingerprint["sha256"], "best": best_out, "strategies": strategies_out}
            )
        finished = datetime.now(UTC)
        summary: dict[str, Any] = {
            "rank_by": parameters.rank_by.value,
            "backtests": state["rows"],
            "chunks": state["chunk_count"],
            "elapsed_seconds": round((finished - planned_at(state)).total_seconds(), 3),
            "data": state["data"],
            "split": parameters.split.model_dump() if parameters.split else None,
            "validation": parameters.validation.model_dump(mode="json") if parameters.validation else None,
            "tickers": per_ticker,
            "artifacts": {
                "bucket": self._store.bucket,
                "results_prefix": results_prefix(tenant_id, job_id),
                "result_parts": [state["parts"][k] for k in sorted(state["parts"], key=int)],
                "equity_curves": curves,
                "summary": f"{job_prefix}summary.json",
            },
        }
        body = json.dumps(summary, indent=2, sort_keys=True).encode()
        await asyncio.to_thread(self._store.put, summary["artifacts"]["summary"], body, "application/json")
        return summary

    async def _walk_forward(
        self, parameters: TradingSweepParameters, fingerprint: dict[str, Any], state: State, job_prefix: str
    ) -> tuple[dict[str, Any], list[str]]:
        """A ticker's walk-forward per strategy: the best cell of each fold's training window, traded on its test
        window and stitched; the stitched curve goes to the object store."""
        plan = parameters.walk_forward
        assert plan is not None
        ticker = fingerprint["ticker"]
        fold_count = plan.fold_count(fingerprint["bars"])
        choices: dict[str, list[FoldChoice]] = {}
        latest: dict[str, Row] = {}  # each strategy's choice on its latest training window: what to trade next
        for grid in parameters.strategies:
            strategy_type = grid.type.value
            chosen = []
            for fold in range(fold_count):
                kept = state["top"][cell_key(ticker, strategy_type, fold)]
                best = (await self._stable(parameters, fingerprint, state, strategy_type, fold, kept))[0]
                latest[strategy_type] = best
                chosen.append(
                    FoldChoice(fold, best["parameters"], best["score"], best["metrics"], best.get("neighbourhood"))
                )
            choices[strategy_type] = chosen
        outcomes: dict[str, WalkForwardOutcome] = await asyncio.get_running_loop().run_in_executor(
            self._cpu,
            evaluate_walk_forward,
            parameters.model_dump_json(),
            ticker,
            fingerprint["sha256"],
            fingerprint["periods_per_year"],
            choices,
            self._market_data,
        )
        reports: list[dict[str, Any]] = []
        strategies_out: list[dict[str, Any]] = []
        keys: list[str] = []
        for strategy_type, outcome in outcomes.items():
            key = f"{job_prefix}walk_forward/{ticker}/{strategy_type}.parquet"
            await asyncio.to_thread(self._store.put, key, outcome.curve, "application/vnd.apache.parquet")
            keys.append(key)
            signal = parameters.grid_of(strategy_type).signal.value
            reports.append({"strategy_type": strategy_type, "signal": signal, "curve_key": key, **outcome.report})
            stats = state["stats"].get(cell_key(ticker, strategy_type, fold_count - 1))
            strategies_out.append(
                {
                    "strategy_type": strategy_type,
                    "signal": signal,
                    "best": latest[strategy_type],
                    "robustness": robustness(stats, latest[strategy_type]["score"]) if stats else None,
                    "out_of_sample": [],
                }
            )
        entry = {
            "ticker": ticker,
            "data_sha256": fingerprint["sha256"],
            "best": [],
            "strategies": strategies_out,
            "walk_forward": reports,
        }
        return entry, keys

    async def _stable(
        self,
        parameters: TradingSweepParameters,
        fingerprint: dict[str, Any],
        state: State,
        strategy_type: str,
        fold: int | None,
        kept: list[Row],
    ) -> list[Row]:
        """The best rows of one grid's ranking with their neighbourhoods; ranked by them when the sweep asks. Rows
        as kept by the collector when it has no score by grid position (an external run, a plan logged before)."""
        ticker = fingerprint["ticker"]
        scores = state.get("scores", {}).get(cell_key(ticker, strategy_type, fold))
        if scores is None:
            return kept
        stability: GridStability = await asyncio.get_running_loop().run_in_executor(
            self._cpu,
            grid_stability,
            parameters.model_dump_json(),
            ticker,
            fingerprint["sha256"],
            fingerprint["periods_per_year"],
            strategy_type,
            fold,
            scores,
            [row["parameters"] for row in kept],
            keep_per_cell(state["parameters"], self._top_cells),
            self._market_data,
        )
        rows = stability.ranked or kept
        return [
            {**row, "neighbourhood": stability.neighbourhoods.get(parameters_key(row["parameters"]))}
            if "neighbourhood" not in row
            else row
            for row in rows
        ]


def _ranking(parameters: TradingSweepParameters) -> Callable[[Row], tuple[Any, ...]]:
    """Best first: by the neighbours' mean score when the sweep ranks by it, else by the cell's own."""
    if not parameters.rank_by_neighbourhood:
        return rank_key

    def by_neighbourhood(row: Row) -> tuple[Any, ...]:
        mean = (row.get("neighbourhood") or {}).get("mean")
        return (mean is None, -(mean if mean is not None else 0.0), *rank_key(row))

    return by_neighbourhood


def _slug(parameters: dict[str, float]) -> str:
    return "-".join(f"{name}{value:g}" for name, value in sorted(parameters.items()))


def _identity(row: Row) -> tuple[str, str]:
    return row["strategy_type"], json.dumps(row["parameters"], sort_keys=True)


def _dedupe(cells: list[tuple[Row, bool]]) -> list[tuple[Row, bool]]:
    """One evaluation per cell, with a curve when any mention asks for one."""
    merged: dict[tuple[str, str], tuple[Row, bool]] = {}
    for row, with_curve in cells:
        previous = merged.get(_identity(row))
        merged[_identity(row)] = (row, with_curve or (previous is not None and previous[1]))
    return list(merged.values())
