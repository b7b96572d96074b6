"""Prices from a local folder: ``<TICKER>.csv`` or ``<TICKER>.parquet`` with a date column and a close column.

Column names are matched without regard to case; ``adj close`` is preferred to ``close`` when both exist, because
a backtest over raw closes would count dividends and splits as losses.
"""

import csv
from pathlib import Path

import numpy as np

from market_data.bounded_cache import BoundedCache
from market_data.series import MarketDataUnavailable, PriceSeries, UnknownTicker
from schemas.sweeps import DataSource

_DATE_COLUMNS = ("date", "datetime", "timestamp", "time")
_CLOSE_COLUMNS = ("adj close", "adj_close", "adjclose", "close")


class FilesProvider:
    source = DataSource.FILES
    checked_at_ingest = True

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._cache: BoundedCache[tuple[float, PriceSeries]] = BoundedCache()

    def tickers(self) -> list[str] | None:
        if not self._folder.is_dir():
            return []
        return sorted({p.stem for p in self._folder.iterdir() if p.suffix.lower() in (".csv", ".parquet")})

    def load(self, ticker: str) -> PriceSeries:
        path = self._path(ticker)
        mtime = path.stat().st_mtime
        cached = self._cache.get(path)
        if cached is None or cached[0] != mtime:  # a replaced file is read again
            cached = (mtime, self._read(ticker, path))
            self._cache.put(path, cached)
        return cached[1]

    def _path(self, ticker: str) -> Path:
        for suffix in (".parquet", ".csv"):
            path = self._folder / f"{ticker}{suffix}"
            if path.is_file():
                return path
        known = self.tickers() or []
        raise UnknownTicker(
            f"unknown ticker {ticker!r} for data source 'files': no {ticker}.csv or {ticker}.parquet in "
            f"{self._folder}" + (f" (it has {', '.join(known[:20])})" if known else "")
        )

    def _read(self, ticker: str, path: Path) -> PriceSeries:
        try:
            if path.suffix == ".parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(path)
                columns = {name.lower(): name for name in table.column_names}
                date_col, close_col = _pick(columns, path)
                raw_dates = table.column(date_col).to_pylist()
                raw_close = table.column(close_col).to_pylist()
            else:
                with path.open(newline="") as handle:
                    reader = csv.DictReader(handle)
                    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
                    date_col, close_col = _pick(columns, path)
                    rows = [row for row in reader if row[close_col] not in ("", None)]
                raw_dates = [row[date_col][:10] for row in rows]
                raw_close = [row[close_col] for row in rows]
            dates = np.array([str(d)[:10] for d in raw_dates], dtype="datetime64[D]")
            close = np.array(raw_close, dtype=np.float64)
        except (OSError, ValueError, KeyError) as exc:
            raise MarketDataUnavailable(f"cannot read {path}: {exc}") from exc
        order = np.argsort(dates, kind="stable")
        dates, close = dates[order], close[order]
        if np.any(close <= 0) or not np.all(np.isfinite(close)):
            raise MarketDataUnavailable(f"{path} has closes that are not positive numbers")
        return PriceSeries(ticker, self.source, dates, close)


def _pick(columns: dict[str, str], path: Path) -> tuple[str, str]:
    date_col = next((columns[c] for c in _DATE_COLUMNS if c in columns), None)
    close_col = next((columns[c] for c in _CLOSE_COLUMNS if c in columns), None)
    if date_col is None or close_col is None:
        raise MarketDataUnavailable(f"{path} needs a date column and a close column; it has {', '.join(columns)}")
    return date_col, close_col
