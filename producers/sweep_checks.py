"""What a sweep is checked for before it is accepted: its size, and that the prices it names exist.

A model alone cannot say these: the limit is configuration and the tickers and dates depend on the data source.
"""

from starlette.concurrency import run_in_threadpool

from market_data.providers import MarketData
from producers.errors import ApiError
from schemas.strategies import STRATEGIES
from schemas.sweeps import StrategyGrid, TradingSweepParameters
from schemas.webhooks import ErrorDetail


async def check_sweep(parameters: TradingSweepParameters, market_data: MarketData, max_backtests: int) -> None:
    """Raises ApiError(422) naming every field at fault."""
    # Counting a grid sorts its axes: off the event loop, like the data check.
    await run_in_threadpool(_check_size, parameters, max_backtests)
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


def _check_size(parameters: TradingSweepParameters, max_backtests: int) -> None:
    tickers = len(parameters.tickers)
    combinations = parameters.combination_count()  # arithmetic: nothing is expanded
    total = tickers * combinations
    if total > max_backtests:
        described = f"{total:,} backtests ({tickers} ticker(s) x {combinations:,} parameter combinations)"
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
