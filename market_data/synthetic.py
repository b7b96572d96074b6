"""Deterministic synthetic prices for any ticker: geometric Brownian motion seeded by the ticker's name.

Prices are generated from a fixed epoch, so a date has the same close whatever range is asked for, and the same
request always has the same data hash.
"""

import hashlib
from datetime import date

import numpy as np

from market_data.bounded_cache import BoundedCache
from market_data.series import OutsideData, PriceSeries
from schemas.sweeps import DataSource

EPOCH = date(2000, 1, 3)
HORIZON = date(2035, 12, 31)
DEFAULT_START = date(2015, 1, 1)
DEFAULT_END = date(2024, 12, 31)


class SyntheticProvider:
    source = DataSource.SYNTHETIC
    checked_at_ingest = True

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._cache: BoundedCache[PriceSeries] = BoundedCache()

    def tickers(self) -> list[str] | None:
        return None  # every ticker exists

    def load(self, ticker: str) -> PriceSeries:
        return self._cache.get_or_make(ticker, lambda: self._generate(ticker))

    def default_range(self) -> tuple[date, date]:
        return DEFAULT_START, DEFAULT_END

    def check_range(self, start: date | None, end: date | None) -> None:
        for name, value in (("start", start), ("end", end)):
            if value is not None and not EPOCH <= value <= HORIZON:
                exc = OutsideData(f"{name} {value} is outside the synthetic data ({EPOCH} to {HORIZON})")
                exc.field = name
                raise exc

    def _generate(self, ticker: str) -> PriceSeries:
        seed = int.from_bytes(hashlib.sha256(f"{self._seed}:{ticker}".encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        dates = np.arange(np.datetime64(EPOCH, "D"), np.datetime64(HORIZON, "D") + 1)
        dates = dates[np.is_busday(dates)]
        drift = rng.uniform(-0.05, 0.15) / 252
        volatility = rng.uniform(0.15, 0.45) / np.sqrt(252)
        steps = rng.normal(drift - volatility**2 / 2, volatility, dates.size)
        close = rng.uniform(20, 200) * np.exp(np.cumsum(steps))
        return PriceSeries(ticker, self.source, dates, close)
