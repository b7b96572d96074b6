"""The strategies a sweep can test, their parameters and the rules between them.

The receiver validates grids against this catalogue and the engine implements each entry, so it is the one list
both sides agree on. The trading rules themselves are described in docs/backtesting.md.
"""

from dataclasses import dataclass
from enum import StrEnum


class Signal(StrEnum):
    """What makes a strategy enter and leave a position: its rule's *state*, or the *crossing* into that state.

    With ``regime`` (the default, and the only behaviour before the choice existed) a crossover is long on every bar
    on which the fast line is above the slow one, so it enters at the first bar where both exist if the fast line
    starts above. With ``crossing`` it enters only on the bar the fast line crosses above the slow one and leaves on
    the bar it crosses below, as vectorbt's ``ma_crossed_above``/``ma_crossed_below`` and backtesting.py's
    ``crossover`` define it: no position before the first cross. Each strategy's two rules are in
    ``docs/sweeps.md``.
    """

    REGIME = "regime"
    CROSSING = "crossing"


class StrategyType(StrEnum):
    SMA_CROSSOVER = "sma_crossover"
    EMA_CROSSOVER = "ema_crossover"
    RSI_REVERSION = "rsi_reversion"
    BOLLINGER_BANDS = "bollinger_bands"
    MOMENTUM = "momentum"
    MACD = "macd"


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    integer: bool
    minimum: float
    maximum: float
    description: str


@dataclass(frozen=True)
class StrategySpec:
    type: StrategyType
    description: str
    parameters: tuple[ParameterSpec, ...]
    less_than: tuple[tuple[str, str], ...] = ()
    """Pairs (a, b) that must satisfy a < b; combinations breaking one are left out of the grid, not rejected."""

    def parameter(self, name: str) -> ParameterSpec | None:
        return next((p for p in self.parameters if p.name == name), None)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)


def _window(name: str, description: str) -> ParameterSpec:
    return ParameterSpec(name, True, 1, 2000, description)


STRATEGIES: dict[StrategyType, StrategySpec] = {
    spec.type: spec
    for spec in (
        StrategySpec(
            StrategyType.SMA_CROSSOVER,
            "Long while the fast simple moving average is above the slow one (short while below, if allowed).",
            (_window("fast", "Bars in the fast average."), _window("slow", "Bars in the slow average.")),
            less_than=(("fast", "slow"),),
        ),
        StrategySpec(
            StrategyType.EMA_CROSSOVER,
            "Long while the fast exponential moving average is above the slow one (short while below, if allowed).",
            (_window("fast", "Span of the fast average."), _window("slow", "Span of the slow average.")),
            less_than=(("fast", "slow"),),
        ),
        StrategySpec(
            StrategyType.RSI_REVERSION,
            "Buy when Wilder's RSI falls below `lower`; sell (or go short) when it rises above `upper`.",
            (
                _window("window", "RSI smoothing window."),
                ParameterSpec("lower", False, 0, 100, "Oversold level that opens a long."),
                ParameterSpec("upper", False, 0, 100, "Overbought level that closes it (or opens a short)."),
            ),
            less_than=(("lower", "upper"),),
        ),
        StrategySpec(
            StrategyType.BOLLINGER_BANDS,
            "Buy when the close falls below the lower band; sell (or go short) when it rises above the upper band.",
            (
                _window("window", "Bars in the moving average and standard deviation."),
                ParameterSpec("num_std", False, 0.1, 10, "Band width in standard deviations."),
            ),
        ),
        StrategySpec(
            StrategyType.MOMENTUM,
            "Long while the rate of change over `window` bars is above `threshold` (short while below -threshold).",
            (
                _window("window", "Look-back of the rate of change."),
                ParameterSpec("threshold", False, 0, 10, "Rate of change, as a fraction, that counts as a trend."),
            ),
        ),
        StrategySpec(
            StrategyType.MACD,
            "Long while the MACD line is above its signal line (short while below, if allowed).",
            (
                _window("fast", "Span of the fast EMA."),
                _window("slow", "Span of the slow EMA."),
                _window("signal", "Span of the signal line's EMA."),
            ),
            less_than=(("fast", "slow"),),
        ),
    )
}
