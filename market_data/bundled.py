"""Real prices that ship with plotly (a dependency through Dash): weekly closes of six large US stocks over
2018-2019, each normalised to 1.0 on the first week. Enough for a demo that works offline."""

import csv
import gzip
from importlib import resources

import numpy as np

from market_data.series import PriceSeries, UnknownTicker
from schemas.sweeps import DataSource


class BundledProvider:
    source = DataSource.BUNDLED
    checked_at_ingest = True

    def __init__(self) -> None:
        self._series: dict[str, PriceSeries] | None = None

    def tickers(self) -> list[str] | None:
        return sorted(self._load())

    def load(self, ticker: str) -> PriceSeries:
        series = self._load().get(ticker.upper())
        if series is None:
            raise UnknownTicker(
                f"unknown ticker {ticker!r} for data source 'bundled'; it has {', '.join(sorted(self._load()))}"
            )
        return series

    def _load(self) -> dict[str, PriceSeries]:
        if self._series is None:
            path = resources.files("plotly") / "package_data" / "datasets" / "stocks.csv.gz"
            with path.open("rb") as raw, gzip.open(raw, "rt", newline="") as text:
                rows = list(csv.reader(text))
            header, body = rows[0], rows[1:]
            dates = np.array([row[0] for row in body], dtype="datetime64[D]")
            self._series = {
                name: PriceSeries(name, self.source, dates, np.array([float(row[i]) for row in body]))
                for i, name in enumerate(header[1:], start=1)
            }
        return self._series
