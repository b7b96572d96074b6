"""What a sweep is checked for before it is accepted: its size, and that the prices it names exist.

A model alone cannot say these: the limit is configuration and the tickers and dates depend on the data source.
"""

from starlette.concurrency import run_in_threadpool

from market_data.providers import MarketData
from producers.errors import ApiError
from schemas.strategies import STRATEGIES
from schemas.sweeps import DataSource, StrategyGrid, TradingSweepParameters, WalkForward, walk_forward_problem
from schemas.webhooks import ErrorDetail


async def check_sweep(parameters: TradingSweepParameters, market_data: MarketData, max_backtests: int) -> None:
    """Raises ApiError(422) naming every field at fault."""
    # Counting a grid sorts its axes: off the event loop, like the data check.
    await run_in_threadpool(_check_size, parameters, max_backtests, 1)
    problems = await run_in_threadpool(
        market_data.problems, parameters.data_source, list(parameters.tickers), parameters.start, parameters.end
    )
    if problems:
        raise ApiError(
            422,
            "market_data_mismatch",
            "; ".join(problem.message for problem in problems),
            [
                ErrorDetail(loc=_loc(problem.field), msg=problem.message, type="market_data_mismatch")
                for problem in problems
            ],
        )
    if parameters.walk_forward is not None and parameters.data_source is not DataSource.HTTP:
        # The folds depend on how many bars each ticker has, which the data check has just read (and cached). The
        # HTTP source is slow to ask here: its folds are checked by the planner, which fails the job with the same
        # message.
        folds = await run_in_threadpool(_check_walk_forward, parameters, parameters.walk_forward, market_data)
        await run_in_threadpool(_check_size, parameters, max_backtests, folds)


def _check_walk_forward(parameters: TradingSweepParameters, plan: WalkForward, market_data: MarketData) -> int:
    """The most folds any ticker has; ApiError(422) when a ticker has none or too many."""
    most = 0
    for ticker in parameters.tickers:
        bars = len(market_data.load(parameters.data_source, ticker, parameters.start, parameters.end).close)
        problem = walk_forward_problem(plan, ticker, bars)
        if problem:
            raise ApiError(
                422,
                "walk_forward_does_not_fit",
                problem,
                [ErrorDetail(loc=["validation", "walk_forward"], msg=problem, type="walk_forward_does_not_fit")],
            )
        most = max(most, plan.fold_count(bars))
    return most


def _check_size(parameters: TradingSweepParameters, max_backtests: int, folds: int) -> None:
    tickers = len(parameters.tickers)
    combinations = parameters.combination_count()  # arithmetic: nothing is expanded
    total = tickers * combinations * folds
    if total > max_backtests:
        described = f"{total:,} backtests ({tickers} ticker(s) x {combinations:,} parameter combinations"
        described += f" x {folds} walk-forward folds)" if folds > 1 else ")"
        raise ApiError(
            422,
            "grid_too_large",
            f"the sweep has {described}; the limit is {max_backtests:,}",
            [
                ErrorDetail(
                    loc=["strategies"], msg=f"{described} is over the limit of {max_backtests:,}", type="grid_too_large"
                )
            ],
        )
    for index, grid in enumerate(parameters.strategies):
        if grid.combination_count() == 0:
            raise ApiError(
                422,
                "empty_grid",
                f"strategy {index} ({grid.type.value}) has no valid combination: every one breaks an ordering rule",
                [
                    ErrorDetail(
                        loc=["strategies", index, "parameters"],
                        msg="no combination satisfies " + ", ".join(f"{a} < {b}" for a, b in _rules(grid)),
                        type="empty_grid",
                    )
                ],
            )


def _rules(grid: StrategyGrid) -> list[tuple[str, str]]:
    return list(STRATEGIES[grid.type].less_than)


def _loc(field: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in field.split(".")]
