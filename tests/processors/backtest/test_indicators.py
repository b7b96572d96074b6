import numpy as np
import pandas as pd
import pytest

from processors.backtest import indicators

WINDOWS = np.array([1, 2, 5, 14, 50])


@pytest.fixture(scope="module")
def close() -> np.ndarray:
    rng = np.random.default_rng(3)
    return 100 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, 600)))


def test_sma_equals_pandas_rolling_mean(close: np.ndarray) -> None:
    expected = np.stack([pd.Series(close).rolling(w).mean().to_numpy() for w in WINDOWS])
    np.testing.assert_allclose(indicators.sma(close, WINDOWS), expected, rtol=1e-12, equal_nan=True)


def test_ema_equals_pandas_ewm_without_adjustment(close: np.ndarray) -> None:
    expected = np.stack([pd.Series(close).ewm(span=w, adjust=False, min_periods=w).mean().to_numpy() for w in WINDOWS])
    np.testing.assert_allclose(indicators.ema(close, WINDOWS), expected, rtol=1e-12, equal_nan=True)


def test_ema_of_a_series_with_leading_gaps_starts_at_its_first_value(close: np.ndarray) -> None:
    rows = np.stack([close, close])
    rows[1, :30] = np.nan
    windows = np.array([9, 9])
    expected = pd.Series(rows[1]).ewm(span=9, adjust=False, min_periods=9).mean().to_numpy()
    np.testing.assert_allclose(indicators.ema_rows(rows, windows)[1], expected, rtol=1e-12, equal_nan=True)


def test_rsi_is_wilders_smoothing_of_gains_and_losses(close: np.ndarray) -> None:
    delta = pd.Series(close).diff()
    expected = []
    for w in WINDOWS:
        gain = delta.clip(lower=0).ewm(alpha=1 / w, adjust=False, min_periods=w).mean()
        loss = (-delta.clip(upper=0)).ewm(alpha=1 / w, adjust=False, min_periods=w).mean()
        expected.append((100 - 100 / (1 + gain / loss)).to_numpy())
    np.testing.assert_allclose(indicators.rsi(close, WINDOWS), np.stack(expected), rtol=1e-10, equal_nan=True)


def test_rsi_is_100_when_a_window_has_no_losses() -> None:
    rising = np.arange(1.0, 40.0)
    assert np.all(indicators.rsi(rising, np.array([14]))[0, 14:] == 100.0)


def test_rolling_std_is_the_population_deviation(close: np.ndarray) -> None:
    expected = np.stack([pd.Series(close).rolling(w).std(ddof=0).to_numpy() for w in WINDOWS])
    np.testing.assert_allclose(indicators.rolling_std(close, WINDOWS), expected, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_rate_of_change_compares_with_the_close_w_bars_back(close: np.ndarray) -> None:
    expected = np.stack([pd.Series(close).pct_change(w).to_numpy() for w in WINDOWS])
    np.testing.assert_allclose(indicators.rate_of_change(close, WINDOWS), expected, rtol=1e-12, equal_nan=True)


def test_a_window_longer_than_the_series_is_all_nan(close: np.ndarray) -> None:
    assert np.isnan(indicators.sma(close[:10], np.array([20]))).all()
