"""The CPU-heavy parts of a sweep, as plain functions of picklable arguments, for the worker's process pool.

Each process keeps its own market-data providers (and their caches) between calls.
"""

import functools
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from market_data.providers import MarketData
from market_data.series import PriceSeries
from processors.backtest.engine import BacktestConfig, equity_curve, run_grid
from processors.backtest.metrics import METRIC_NAMES
from processors.backtest.simulation import Costs
from processors.sweeps.grid import grid_arrays, in_sample_bars
from processors.sweeps.stability import neighbourhoods
from processors.sweeps.walk_forward import FoldChoice, WalkForwardOutcome, walk_forward
from schemas.strategies import StrategyType
from schemas.sweeps import (
    DataFingerprint,
    Direction,
    StrategyGrid,
    SweepChunk,
    TradingSweepParameters,
    parameters_key,
)


@dataclass(frozen=True)
class MarketDataConfig:
    files_folder: Path
    http_base_url: str | None
    http_timeout_seconds: float
    http_attempts: int


class DataChanged(Exception):
    """The prices are not the ones the sweep was planned on; running anyway would mix two datasets."""


_providers: dict[MarketDataConfig, MarketData] = {}


def market_data(config: MarketDataConfig) -> MarketData:
    if config not in _providers:
        _providers[config] = MarketData(
            files_folder=config.files_folder,
            http_base_url=config.http_base_url,
            http_timeout_seconds=config.http_timeout_seconds,
            http_attempts=config.http_attempts,
        )
    return _providers[config]


def load_prices(config: MarketDataConfig, parameters: TradingSweepParameters, ticker: str) -> PriceSeries:
    return market_data(config).load(parameters.data_source, ticker, parameters.start, parameters.end)


def fingerprints(config: MarketDataConfig, parameters: TradingSweepParameters) -> list[DataFingerprint]:
    """Loads every ticker once, so that problems show before any chunk is queued (raises MarketDataError)."""
    return [load_prices(config, parameters, ticker).fingerprint() for ticker in parameters.tickers]


def backtest_config(parameters: TradingSweepParameters, periods_per_year: float) -> BacktestConfig:
    return BacktestConfig(
        costs=Costs(fee=parameters.fees, slippage=parameters.slippage),
        initial_capital=parameters.initial_capital,
        periods_per_year=periods_per_year,
        long_short=parameters.direction is Direction.LONG_SHORT,
    )


@dataclass(frozen=True)
class ChunkOutput:
    rows: list[dict[str, Any]]
    parquet: bytes
    seconds: float


def run_chunk(chunk_json: str | bytes, config: MarketDataConfig) -> ChunkOutput:
    t0 = time.perf_counter()
    chunk = SweepChunk.model_validate_json(chunk_json)
    parameters = chunk.parameters
    prices = _verified_prices(config, chunk)
    grid = parameters.strategies[chunk.strategy_index]
    combinations = grid_combinations(grid.model_dump_json())[chunk.start : chunk.stop]
    close, window = ranked_bars(parameters, prices.close, chunk.fold)
    result = run_grid(
        close,
        grid.type,
        grid_arrays(combinations),
        backtest_config(parameters, chunk.data.periods_per_year),
        window=window,
        signal=grid.signal,
    )
    scores = result.metrics[parameters.rank_by.value]
    rows = [
        {
            "ticker": chunk.ticker,
            "strategy_type": grid.type.value,
            "parameters": combination,
            "score": _finite(scores[i]),
            "metrics": _metrics_row(result.metrics, i),
        }
        for i, combination in enumerate(combinations)
    ]
    return ChunkOutput(rows, rows_to_parquet(rows, chunk.fold), time.perf_counter() - t0)


def ranked_bars(
    parameters: TradingSweepParameters, close: NDArray[np.float64], fold: int | None
) -> tuple[NDArray[np.float64], slice]:
    """The closes a chunk's indicators see and the window its accounts trade: a walk-forward fold's training window
    after the bars before it (so that the indicators are warm and nothing after the window is read), else the
    in-sample part of the series."""
    walk_forward = parameters.walk_forward
    if walk_forward is not None and fold is not None:
        chosen = walk_forward.folds(len(close))[fold]
        return close[: chosen.train_stop], slice(chosen.train_start, chosen.train_stop)
    split = parameters.split.in_sample_fraction if parameters.split else None
    return close, slice(0, in_sample_bars(len(close), split))


@functools.lru_cache(maxsize=4)
def grid_combinations(grid_json: str) -> list[dict[str, int | float]]:
    """Every combination of a strategy's grid, kept by the process for the sweep's next chunks: building all
    250,000 of a million-backtest sweep's grid took 0.3 s, six times a chunk's backtests, for each 1,000-backtest
    chunk (``zixly bench sweep-e2e``). Callers slice it and must not change its combinations."""
    return StrategyGrid.model_validate_json(grid_json).combinations()


def _verified_prices(config: MarketDataConfig, chunk: SweepChunk) -> PriceSeries:
    prices = load_prices(config, chunk.parameters, chunk.ticker)
    if prices.sha256() != chunk.data.sha256:
        raise DataChanged(
            f"the prices of {chunk.ticker} changed since the sweep was planned "
            f"(sha256 {chunk.data.sha256[:12]}… then, {prices.sha256()[:12]}… now)"
        )
    return prices


@dataclass(frozen=True)
class CellReport:
    out_of_sample: dict[str, float | None] | None
    curve: bytes | None
    """Parquet of (date, equity) over the whole series, for the best cells only."""


def evaluate_cells(
    parameters_json: str,
    ticker: str,
    sha256: str,
    periods_per_year: float,
    cells: list[tuple[str, dict[str, float], bool]],
    config: MarketDataConfig,
) -> list[CellReport]:
    """Out-of-sample metrics (when a split was asked for) and, where asked, equity curves of chosen cells."""
    parameters = TradingSweepParameters.model_validate_json(parameters_json)
    prices = load_prices(config, parameters, ticker)
    if prices.sha256() != sha256:
        raise DataChanged(f"the prices of {ticker} changed while the sweep ran")
    config_bt = backtest_config(parameters, periods_per_year)
    bars = len(prices.close)
    split_at = in_sample_bars(bars, parameters.split.in_sample_fraction) if parameters.split else None
    reports = []
    for strategy_type, values, with_curve in cells:
        grid = parameters.grid_of(strategy_type)
        oos = None
        if split_at is not None:
            # Positions come from the whole series (only the past is used at each bar); the account starts fresh
            # on the first out-of-sample bar.
            result = run_grid(
                prices.close,
                grid.type,
                grid_arrays([values]),
                config_bt,
                window=slice(split_at, bars),
                signal=grid.signal,
            )
            oos = _metrics_row(result.metrics, 0)
        curve = None
        if with_curve:
            equity = equity_curve(prices.close, grid.type, values, config_bt, grid.signal)
            curve = _curve_to_parquet(prices.dates, equity)
        reports.append(CellReport(oos, curve))
    return reports


def evaluate_walk_forward(
    parameters_json: str,
    ticker: str,
    sha256: str,
    periods_per_year: float,
    choices: dict[str, list[FoldChoice]],
    config: MarketDataConfig,
) -> dict[str, WalkForwardOutcome]:
    """Per strategy type, its walk-forward on ``ticker``: the chosen cell of each fold traded on the fold's test
    window, stitched."""
    parameters = TradingSweepParameters.model_validate_json(parameters_json)
    plan = parameters.walk_forward
    if plan is None:
        raise ValueError("not a walk-forward sweep")
    prices = load_prices(config, parameters, ticker)
    if prices.sha256() != sha256:
        raise DataChanged(f"the prices of {ticker} changed while the sweep ran")
    config_bt = backtest_config(parameters, periods_per_year)
    return {
        strategy_type: walk_forward(
            prices.close,
            prices.dates,
            grid.type,
            grid.signal,
            plan,
            fold_choices,
            config_bt,
            parameters.rank_by.value,
        )
        for strategy_type, fold_choices in choices.items()
        for grid in [parameters.grid_of(strategy_type)]
    }


@dataclass(frozen=True)
class GridStability:
    neighbourhoods: dict[str, dict[str, float | int | None]]
    """Per asked-for combination (by its parameters' key): its neighbours' mean and worst score and their number."""
    ranked: list[dict[str, Any]]
    """When asked to rank by neighbourhood: the best cells by their neighbours' mean score, as result rows (in-sample
    metrics run again on the ranked bars), each with its neighbourhood."""


def grid_stability(
    parameters_json: str,
    ticker: str,
    sha256: str,
    periods_per_year: float,
    strategy_type: str,
    fold: int | None,
    scores: NDArray[np.float64],
    wanted: list[dict[str, Any]],
    keep: int,
    config: MarketDataConfig,
) -> GridStability:
    """The neighbourhoods of one grid's ranking (a ticker, a strategy, a fold) from every cell's score in grid
    order, for the ``wanted`` combinations and, when the sweep ranks by them, the ``keep`` best by them."""
    parameters = TradingSweepParameters.model_validate_json(parameters_json)
    grid = parameters.grid_of(strategy_type)
    found = neighbourhoods(grid, scores)
    if found is None:
        return GridStability({}, [])
    # Places found on the grid's axes: listing a million-cell grid's combinations to look a few up took a second.
    annotated = {
        parameters_key(values): found.of(index)
        for values in wanted
        for index in [found.layout.index_of(values)]
        if index is not None
    }
    if not parameters.rank_by_neighbourhood:
        return GridStability(annotated, [])
    # Best neighbourhood first; then the cell's own score; then the grid's order.
    order = np.lexsort((np.arange(len(scores)), _descending(scores), _descending(found.mean)))[:keep]
    prices = load_prices(config, parameters, ticker)
    if prices.sha256() != sha256:
        raise DataChanged(f"the prices of {ticker} changed while the sweep ran")
    chosen = [found.layout.parameters_at(int(index)) for index in order]
    close, window = ranked_bars(parameters, prices.close, fold)
    result = run_grid(
        close,
        grid.type,
        grid_arrays(chosen),
        backtest_config(parameters, periods_per_year),
        window=window,
        signal=grid.signal,
    )
    rank_scores = result.metrics[parameters.rank_by.value]
    ranked = [
        {
            "ticker": ticker,
            "strategy_type": grid.type.value,
            "parameters": combination,
            "score": _finite(rank_scores[i]),
            "metrics": _metrics_row(result.metrics, i),
            "neighbourhood": found.of(int(index)),
        }
        for i, (index, combination) in enumerate(zip(order, chosen, strict=True))
    ]
    return GridStability(annotated, ranked)


def _descending(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """A sort key that puts the highest value first and an undefined one last."""
    return np.where(np.isnan(values), np.inf, -values)


def rows_to_parquet(rows: list[dict[str, Any]], fold: int | None = None) -> bytes:
    columns: dict[str, list[Any]] = {
        "ticker": [r["ticker"] for r in rows],
        "strategy_type": [r["strategy_type"] for r in rows],
        "parameters": [json.dumps(r["parameters"], sort_keys=True) for r in rows],
        "score": [r["score"] for r in rows],
    }
    for name in METRIC_NAMES:
        columns[name] = [r["metrics"][name] for r in rows]
    if fold is not None:
        columns["fold"] = [fold] * len(rows)
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer, compression="zstd")
    return buffer.getvalue()


def _curve_to_parquet(dates: NDArray[np.datetime64], equity: NDArray[np.float64]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"date": dates.astype("datetime64[D]"), "equity": equity}), buffer, compression="zstd")
    return buffer.getvalue()


def _metrics_row(metrics: dict[str, NDArray[np.float64]], index: int) -> dict[str, int | float | None]:
    row: dict[str, int | float | None] = {name: _finite(metrics[name][index]) for name in METRIC_NAMES}
    row["trades"] = int(metrics["trades"][index])
    return row


def warm_up() -> None:
    """Run once per pool process at start, so the first real chunk does not pay for imports and first calls."""
    close = np.linspace(10.0, 20.0, 64)
    run_grid(
        close,
        StrategyType.SMA_CROSSOVER,
        {"fast": np.array([2.0]), "slow": np.array([5.0])},
        BacktestConfig(Costs(0.0, 0.0), 1.0, 252.0, long_short=False),
    )


def _finite(value: float | np.floating[Any] | np.integer[Any]) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
