"""The out-of-sample half of a walk-forward: each fold's chosen cell traded on its test window, and the test windows
stitched into one account.

The training half is ordinary chunks of the grid on each fold's training window (``compute.ranked_bars``); the
collector keeps the best cell of each fold, and the finisher hands them here.
"""

import io
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from processors.backtest.engine import BacktestConfig, backtest_cell
from processors.backtest.metrics import curve_metrics
from schemas.strategies import Signal, StrategyType
from schemas.sweeps import Fold, WalkForward

Metrics = dict[str, float | int | None]


@dataclass(frozen=True)
class FoldChoice:
    """The cell a fold's training window ranked first, and what it scored there."""

    fold: int
    parameters: dict[str, Any]
    in_sample_score: float | None
    in_sample: Metrics
    neighbourhood: dict[str, Any] | None = None
    """Its neighbours' scores in the fold's ranking, when they are known."""


@dataclass(frozen=True)
class WalkForwardOutcome:
    report: dict[str, Any]
    """Per fold (windows, chosen parameters, in- and out-of-sample metrics) and overall (the stitched account)."""
    curve: bytes
    """Parquet of (date, fold, equity, buy_and_hold) over every test bar."""


def walk_forward(
    close: NDArray[np.float64],
    dates: NDArray[np.datetime64],
    strategy: StrategyType,
    signal: Signal,
    plan: WalkForward,
    choices: list[FoldChoice],
    config: BacktestConfig,
    rank_by: str,
) -> WalkForwardOutcome:
    """Each test window is an account of its own, opened at its first bar's close with the previous window's final
    equity (the first with the initial capital), like the single split's out-of-sample report; indicators see every
    bar before the window and nothing after it."""
    folds = plan.folds(len(close))
    if [choice.fold for choice in choices] != [fold.index for fold in folds]:
        raise ValueError(f"a walk-forward of {len(folds)} folds needs one choice per fold, in order")
    capital = config.initial_capital
    equity_parts, hold_parts, fold_of_bar, rows = [], [], [], []
    account, held = capital, capital
    trades = 0
    for fold, choice in zip(folds, choices, strict=True):
        window = slice(fold.test_start, fold.test_stop)
        tested = backtest_cell(close[: fold.test_stop], strategy, choice.parameters, config, signal, window)
        equity_parts.append(tested.equity * (account / capital))
        hold_parts.append(held * close[window] / close[fold.test_start])
        fold_of_bar.append(np.full(fold.test_stop - fold.test_start, fold.index, dtype=np.int16))
        account, held = float(equity_parts[-1][-1]), float(hold_parts[-1][-1])
        trades += int(tested.metrics["trades"])
        rows.append(_fold_row(fold, dates, choice, _finite_metrics(tested.metrics), rank_by))
    equity = np.concatenate(equity_parts)
    hold = np.concatenate(hold_parts)
    stitched = _finite_metrics(_one_curve(equity, capital, config.periods_per_year))
    stitched["trades"] = trades
    in_sample_cagr = [choice.in_sample.get("cagr") for choice in choices]
    known = [value for value in in_sample_cagr if value is not None]
    mean_in_sample = sum(known) / len(known) if known else None
    changes = sum(1 for before, after in itertools.pairwise(choices) if before.parameters != after.parameters)
    report = {
        "folds": rows,
        "out_of_sample": stitched,
        "buy_and_hold": _finite_metrics(_one_curve(hold, capital, config.periods_per_year)),
        "in_sample_cagr": mean_in_sample,
        "efficiency": efficiency(stitched["cagr"], mean_in_sample),
        "parameter_changes": changes,
        "parameter_change_rate": changes / (len(choices) - 1) if len(choices) > 1 else None,
    }
    test_bars = np.concatenate([np.arange(fold.test_start, fold.test_stop) for fold in folds])
    return WalkForwardOutcome(report, _curve_parquet(dates[test_bars], np.concatenate(fold_of_bar), equity, hold))


def efficiency(out_of_sample_cagr: float | int | None, in_sample_cagr: float | None) -> float | None:
    """Walk-forward efficiency: annualised out-of-sample return over the chosen cells' mean in-sample one. Undefined
    (None) unless the in-sample return is positive: a ratio to a loss, or to nothing, reads backwards."""
    if out_of_sample_cagr is None or in_sample_cagr is None or in_sample_cagr <= 0:
        return None
    return float(out_of_sample_cagr) / in_sample_cagr


def _fold_row(
    fold: Fold, dates: NDArray[np.datetime64], choice: FoldChoice, tested: Metrics, rank_by: str
) -> dict[str, Any]:
    return {
        "fold": fold.index,
        "train": _window(dates, fold.train_start, fold.train_stop),
        "test": _window(dates, fold.test_start, fold.test_stop),
        "parameters": choice.parameters,
        "in_sample_score": choice.in_sample_score,
        "in_sample": choice.in_sample,
        "neighbourhood": choice.neighbourhood,
        "out_of_sample_score": tested.get(rank_by),
        "out_of_sample": tested,
    }


def _window(dates: NDArray[np.datetime64], start: int, stop: int) -> dict[str, Any]:
    return {
        "first": str(dates[start].astype("datetime64[D]")),
        "last": str(dates[stop - 1].astype("datetime64[D]")),
        "start_bar": start,
        "bars": stop - start,
    }


def _one_curve(equity: NDArray[np.float64], capital: float, periods_per_year: float) -> dict[str, float]:
    return {
        name: float(values[0]) for name, values in curve_metrics(equity[None, :], capital, periods_per_year).items()
    }


def _finite_metrics(metrics: dict[str, float]) -> Metrics:
    out: Metrics = {name: value if math.isfinite(value) else None for name, value in metrics.items()}
    if "trades" in out and out["trades"] is not None:
        out["trades"] = int(out["trades"])
    return out


def _curve_parquet(
    dates: NDArray[np.datetime64], fold: NDArray[np.int16], equity: NDArray[np.float64], hold: NDArray[np.float64]
) -> bytes:
    buffer = io.BytesIO()
    table = pa.table({"date": dates.astype("datetime64[D]"), "fold": fold, "equity": equity, "buy_and_hold": hold})
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()
