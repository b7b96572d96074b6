"""The trading-sweep job: what an integrator asks for, and the records the pipeline keeps about it.

A grid is a product of parameter values (a list, or an inclusive start/stop/step range) from which combinations
that break a strategy's ordering rule (fast < slow, lower < upper) are left out. Grid expansion is deterministic,
so a chunk of work is named by a range of indexes into it.
"""

import bisect
import itertools
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, model_validator

from schemas.job_parameters import JobParameters
from schemas.strategies import STRATEGIES, Signal, StrategyType

SWEEP_JOB_TYPE = "trading.sweep"

Ticker = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._^=-]*$")]

# A range with a non-integral number of steps still stops at or before `stop`; this slack keeps 0.1-steps from
# losing their last value to floating-point error.
_RANGE_EPSILON = 1e-9


# Values one parameter may take: a list holds at most this many, a range is refused (by arithmetic, before a single
# value is made) when it would. The product of a grid's axes is bounded separately, by the sweep size limit.
MAX_AXIS_VALUES = 10_000


class ValueRange(BaseModel):
    """``start`` to ``stop`` inclusive, every ``step``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: float = Field(allow_inf_nan=False)
    stop: float = Field(allow_inf_nan=False)
    step: float = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _bounded(self) -> "ValueRange":
        if self.stop < self.start:
            raise ValueError(f"inverted range: stop {self.stop:g} is below start {self.start:g}")
        steps = self._steps()
        if steps + 1 > MAX_AXIS_VALUES:
            # Extreme ends over a tiny step overflow to infinity (a fuzzer's 500 once): no count to print then.
            values = f"{math.floor(steps) + 1:,} values" if math.isfinite(steps) else "too many values to count"
            raise ValueError(
                f"the range has {values} (every {self.step:g} from {self.start:g} to {self.stop:g}); "
                f"a parameter takes at most {MAX_AXIS_VALUES:,}"
            )
        return self

    def _steps(self) -> float:
        return (self.stop - self.start) / self.step + _RANGE_EPSILON

    def count(self) -> int:
        return math.floor(self._steps()) + 1

    def value(self, index: int) -> float:
        return round(self.start + index * self.step, 12)

    def values(self) -> list[float]:
        return [self.value(i) for i in range(self.count())]


def _kind_of_values(value: Any) -> str:
    return "range" if isinstance(value, dict | ValueRange) else "list"


# Told apart by shape, so that a refused range is reported as a range (not also as "not a valid list").
ParameterValues = Annotated[
    Annotated[Annotated[list[float], Field(min_length=1, max_length=MAX_AXIS_VALUES)], Tag("list")]
    | Annotated[ValueRange, Tag("range")],
    Discriminator(_kind_of_values),
]


class StrategyGrid(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: StrategyType
    parameters: dict[str, ParameterValues] = Field(
        description="Every parameter of the strategy, each a list of values or a {start, stop, step} range."
    )
    signal: Signal = Field(
        default=Signal.REGIME,
        description="`regime`: hold the position while the rule's state lasts (long while fast > slow); "
        "`crossing`: enter and leave only on the bar that crosses into a state (no position before the first "
        "cross). The rules of each strategy are in docs/sweeps.md.",
    )

    @model_validator(mode="after")
    def _matches_catalogue(self) -> "StrategyGrid":
        spec = STRATEGIES[self.type]
        unknown = sorted(set(self.parameters) - set(spec.parameter_names))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for {self.type.value}; "
                f"it takes {', '.join(spec.parameter_names)}"
            )
        missing = [name for name in spec.parameter_names if name not in self.parameters]
        if missing:
            raise ValueError(f"missing parameter(s) {', '.join(missing)} for {self.type.value}")
        for name in spec.parameter_names:
            parameter = spec.parameter(name)
            assert parameter is not None
            given = self.parameters[name]
            # A range is checked by its ends and its step, not value by value.
            checked = [given.start, given.value(given.count() - 1)] if isinstance(given, ValueRange) else given
            for value in checked:
                if not parameter.minimum <= value <= parameter.maximum:
                    raise ValueError(f"{name}={value:g} is outside [{parameter.minimum:g}, {parameter.maximum:g}]")
            integral = [given.start, given.step] if isinstance(given, ValueRange) else given
            if parameter.integer and any(value != int(value) for value in integral):
                raise ValueError(
                    f"{name} takes whole numbers of bars, got {next(v for v in integral if v != int(v)):g}"
                )
        return self

    def axes(self) -> dict[str, list[float]]:
        """Each parameter's distinct values, in the order given and in the catalogue's parameter order."""
        spec = STRATEGIES[self.type]
        out = {}
        for name in spec.parameter_names:
            given = self.parameters[name]
            values = given.values() if isinstance(given, ValueRange) else given
            out[name] = list(dict.fromkeys(values))
        return out

    def axis_sizes(self) -> dict[str, int]:
        """How many values each parameter takes, without making them (a list's repeats count once)."""
        return {
            name: given.count() if isinstance(given, ValueRange) else len(dict.fromkeys(given))
            for name, given in self.parameters.items()
        }

    def product_size(self) -> int:
        """Size of the full product, before the ordering rules drop combinations (cheap: nothing is expanded)."""
        return math.prod(self.axis_sizes().values())

    def combination_count(self) -> int:
        """How many combinations keep the ordering rules, counted without expanding the product: each rule's pairs
        by a sorted walk of its two axes, times the sizes of the other axes."""
        spec = STRATEGIES[self.type]
        sizes = self.axis_sizes()
        axes = self.axes()
        count = 1
        ruled: set[str] = set()
        for lower, upper in spec.less_than:
            greater = sorted(axes[upper])
            count *= sum(len(greater) - bisect.bisect_right(greater, value) for value in axes[lower])
            ruled |= {lower, upper}
        return count * math.prod(size for name, size in sizes.items() if name not in ruled)

    def combinations(self) -> list[dict[str, int | float]]:
        """Every valid combination, in a fixed order; whole-number parameters (windows) as ints."""
        axes = self.axes()
        spec = STRATEGIES[self.type]
        integer = {p.name for p in spec.parameters if p.integer}
        names = list(axes)
        rules = spec.less_than
        out = []
        for values in itertools.product(*axes.values()):
            combination = {
                name: int(value) if name in integer else value for name, value in zip(names, values, strict=True)
            }
            if all(combination[a] < combination[b] for a, b in rules):
                out.append(combination)
        return out


class DataSource(StrEnum):
    BUNDLED = "bundled"
    """Real weekly prices of six large US stocks (2018-2019), shipped inside plotly: works offline."""
    SYNTHETIC = "synthetic"
    """Seeded geometric Brownian motion for any ticker and any dates (business days): for scale."""
    FILES = "files"
    """CSV or Parquet files in the configured market-data folder, one per ticker."""
    HTTP = "http"
    """The configured market-data HTTP API."""


class Direction(StrEnum):
    LONG_ONLY = "long_only"
    LONG_SHORT = "long_short"


class RankMetric(StrEnum):
    SHARPE = "sharpe"
    SORTINO = "sortino"
    CALMAR = "calmar"
    TOTAL_RETURN = "total_return"
    CAGR = "cagr"
    MAX_DRAWDOWN = "max_drawdown"
    WIN_RATE = "win_rate"


class SampleSplit(BaseModel):
    """Rank on the first part of the data, then report the best candidates on the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_sample_fraction: float = Field(default=0.7, ge=0.1, le=0.9)
    top_n: int = Field(default=5, ge=1, le=100, description="Candidates per ticker and strategy tested out of sample.")


# A walk-forward runs its grid once per fold: this bounds the folds a series may be cut into, whatever its length.
MAX_FOLDS = 50


@dataclass(frozen=True)
class Fold:
    """One step of a walk-forward: bars [train_start, train_stop) rank the grid, [test_start, test_stop) trade the
    best cell of that ranking."""

    index: int
    train_start: int
    train_stop: int
    test_start: int
    test_stop: int


class WalkForward(BaseModel):
    """Rank on a training window, trade the best cell on the bars after it, move on by ``step_bars``, repeat."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train_bars: int = Field(ge=10, le=1_000_000, description="Bars of each training window.")
    test_bars: int = Field(ge=2, le=1_000_000, description="Bars of each test window, right after its training.")
    step_bars: int | None = Field(
        default=None,
        ge=2,
        le=1_000_000,
        description="How far each fold moves on; the test length when omitted. At least the test length, so that "
        "no bar is traded out of sample twice.",
    )
    anchored: bool = Field(
        default=False, description="Every training window starts at the first bar (growing) instead of rolling."
    )

    @model_validator(mode="after")
    def _no_overlapping_tests(self) -> "WalkForward":
        if self.step_bars is not None and self.step_bars < self.test_bars:
            raise ValueError(
                f"step_bars {self.step_bars} is shorter than test_bars {self.test_bars}: test windows would overlap "
                "and the stitched out-of-sample curve would trade some bars twice"
            )
        return self

    @property
    def step(self) -> int:
        return self.step_bars if self.step_bars is not None else self.test_bars

    def fold_count(self, bars: int) -> int:
        """How many whole folds (training and test window) fit in ``bars``."""
        spare = bars - self.train_bars - self.test_bars
        return 0 if spare < 0 else spare // self.step + 1

    def fold(self, index: int) -> Fold:
        """Fold ``index``'s windows, which do not depend on the series' length (only how many folds fit does)."""
        train_stop = self.train_bars + index * self.step
        train_start = 0 if self.anchored else train_stop - self.train_bars
        return Fold(index, train_start, train_stop, train_stop, train_stop + self.test_bars)

    def folds(self, bars: int) -> list[Fold]:
        return [self.fold(index) for index in range(self.fold_count(bars))]


def walk_forward_problem(walk_forward: WalkForward, ticker: str, bars: int) -> str | None:
    """Why a ticker's series cannot be walked forward as asked, or None."""
    folds = walk_forward.fold_count(bars)
    if folds == 0:
        return (
            f"{ticker} has {bars:,} bars; a walk-forward fold needs train_bars + test_bars = "
            f"{walk_forward.train_bars + walk_forward.test_bars:,}"
        )
    if folds > MAX_FOLDS:
        return (
            f"{ticker}'s {bars:,} bars make {folds:,} walk-forward folds; at most {MAX_FOLDS} are allowed "
            "(take a longer step_bars or test_bars)"
        )
    return None


class Validation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    walk_forward: WalkForward


class TradingSweepParameters(JobParameters):
    """A parameter sweep: every combination of every strategy on every ticker, ranked by one metric."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "tickers": ["AAPL", "MSFT", "GOOG"],
                    "strategies": [
                        {
                            "type": "sma_crossover",
                            "parameters": {
                                "fast": {"start": 2, "stop": 20, "step": 1},
                                "slow": {"start": 10, "stop": 40, "step": 2},
                            },
                        },
                        {
                            "type": "rsi_reversion",
                            "parameters": {"window": [7, 14], "lower": [20, 25, 30, 35], "upper": [60, 65, 70, 75, 80]},
                        },
                    ],
                    "data_source": "bundled",
                    "rank_by": "sharpe",
                }
            ]
        },
    )

    tickers: list[Ticker] = Field(min_length=1, max_length=100)
    strategies: list[StrategyGrid] = Field(min_length=1, max_length=20)
    start: date | None = Field(default=None, description="First bar; the first available when omitted.")
    end: date | None = Field(default=None, description="Last bar; the last available when omitted.")
    data_source: DataSource = DataSource.BUNDLED
    initial_capital: float = Field(default=10_000.0, gt=0, le=1e12)
    fees: float = Field(default=0.001, ge=0, le=0.1, description="Fraction of traded notional per fill.")
    slippage: float = Field(default=0.0005, ge=0, lt=0.5, description="Fraction by which fills are worse.")
    direction: Direction = Direction.LONG_ONLY
    rank_by: RankMetric = RankMetric.SHARPE
    rank_by_neighbourhood: bool = Field(
        default=False,
        description="Choose the best cells by the mean score of their neighbours in the grid (one step away on any "
        "axis) instead of their own: a plateau over a lone spike.",
    )
    split: SampleSplit | None = None
    validation: Validation | None = Field(
        default=None, description="Walk-forward optimisation: rank per training window, trade the next test window."
    )
    execution: Literal["internal", "external"] = Field(
        default="internal", description="`external` dispatches the sweep to the tenant's backtest service."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "TradingSweepParameters":
        if len(set(self.tickers)) != len(self.tickers):
            raise ValueError("tickers must not repeat")
        types = [grid.type for grid in self.strategies]
        repeated = sorted({t.value for t in types if types.count(t) > 1})
        if repeated:
            # A sweep's results and best cells are kept per ticker and strategy type: two grids of one type would
            # mix their rows (and a regime and a crossing run of one combination would overwrite each other).
            raise ValueError(
                f"strategy {', '.join(repeated)} appears more than once; give each type one grid "
                "(compare two signals or fee levels with two sweeps)"
            )
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.validation is not None and self.split is not None:
            raise ValueError("give either a split or a walk-forward validation, not both")
        if self.validation is not None and self.execution == "external":
            raise ValueError("walk-forward validation runs on the pipeline's own workers, not with execution external")
        if self.rank_by_neighbourhood and self.execution == "external":
            raise ValueError(
                "rank_by_neighbourhood needs every cell's place in the grid, which an external run does not report"
            )
        return self

    @property
    def walk_forward(self) -> WalkForward | None:
        return self.validation.walk_forward if self.validation else None

    def combination_count(self) -> int:
        return sum(grid.combination_count() for grid in self.strategies)

    def grid_of(self, strategy_type: StrategyType | str) -> StrategyGrid:
        """The sweep's grid of one strategy type (a sweep has at most one of each)."""
        return next(grid for grid in self.strategies if grid.type == strategy_type)


class TradingSweepWebhook(TradingSweepParameters):
    """``POST /webhook/trading-sweep``."""

    correlation_id: str | None = Field(default=None, min_length=1, max_length=128)
    metadata: dict[str, str] = Field(default_factory=dict)

    def job_parameters(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"correlation_id", "metadata"}, exclude_none=True)


class DataFingerprint(BaseModel):
    """Exactly which prices a sweep used: a digest of the dates and closes, and their extent."""

    model_config = ConfigDict(frozen=True)

    ticker: str
    source: DataSource
    sha256: str
    bars: int
    first: date
    last: date
    periods_per_year: float


def parameters_key(parameters: Mapping[str, float]) -> str:
    """A combination as text, ``fast=10,slow=50``: the results table's key, and what breaks ties in a ranking."""
    return ",".join(f"{name}={value:g}" for name, value in sorted(parameters.items()))


class SweepResultRow(BaseModel):
    """One backtest: a ticker, a strategy, one combination of its parameters, and the metrics."""

    model_config = ConfigDict(frozen=True)

    ticker: str
    strategy_type: StrategyType
    parameters: dict[str, int | float]
    score: float | None = Field(description="The ranking metric's value; null when it is undefined.")
    metrics: dict[str, int | float | None]


class SweepCallbackWebhook(BaseModel):
    """``POST /webhook/sweep-callback``: the external backtest service reports a dispatched sweep's outcome."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: uuid.UUID
    external_reference: str = Field(min_length=1, max_length=200, description="The reference it gave at dispatch.")
    callback_token: str = Field(min_length=16, max_length=256, description="The token it was given at dispatch.")
    status: Literal["completed", "failed"]
    results: list[SweepResultRow] = Field(default_factory=list, max_length=1_000_000)
    error: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _outcome_matches_status(self) -> "SweepCallbackWebhook":
        if self.status == "completed" and not self.results:
            raise ValueError("a completed sweep reports its results")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed sweep says why in `error`")
        return self


class ExternalSweepRequest(BaseModel):
    """What the pipeline POSTs to a tenant's external backtest service; it answers 2xx with a ``reference``."""

    job_id: uuid.UUID
    tenant_id: str
    callback_url: str
    callback_token: str
    sweep: TradingSweepParameters
    data: list[DataFingerprint]


class ExternalSweepAccepted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reference: str = Field(min_length=1, max_length=200)


def chunk_record_key(job_id: str, chunk_index: int) -> bytes:
    """A chunk's record key on the work topic: its job and index, so that a worker recognises a chunk already done."""
    return f"{job_id}:{chunk_index}".encode()


class SweepChunk(BaseModel):
    """A unit of work on the sweep work topic: combinations [start, stop) of one strategy grid on one ticker."""

    model_config = ConfigDict(frozen=True)

    job_id: uuid.UUID
    tenant_id: str
    correlation_id: str
    causation_id: uuid.UUID
    chunk_index: int
    chunk_count: int
    ticker: str
    strategy_index: int
    start: int
    stop: int
    data: DataFingerprint
    parameters: TradingSweepParameters
    fold: int | None = Field(default=None, description="The walk-forward fold whose training window is ranked.")
