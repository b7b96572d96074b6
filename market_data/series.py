"""A ticker's daily (or weekly) closes, and the facts about it a sweep records."""

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from schemas.sweeps import DataFingerprint, DataSource

# A bound may miss the data by up to a week (a weekend, a holiday, weekly bars) without being called outside it.
_RANGE_SLACK_DAYS = 7


class MarketDataError(Exception):
    """A request for prices that cannot be answered; ``field`` names the request field at fault."""

    field = "tickers"
    retryable = False


class UnknownTicker(MarketDataError):
    pass


class OutsideData(MarketDataError):
    field = "start"


class MarketDataUnavailable(MarketDataError):
    """The source is down or answered nonsense; trying later may work."""

    field = "data_source"
    retryable = True


@dataclass(frozen=True)
class PriceSeries:
    ticker: str
    source: DataSource
    dates: NDArray[np.datetime64]
    close: NDArray[np.float64]

    def __post_init__(self) -> None:
        if self.dates.shape != self.close.shape:
            raise ValueError("dates and closes differ in length")

    @property
    def first(self) -> date:
        return _to_date(self.dates[0])

    @property
    def last(self) -> date:
        return _to_date(self.dates[-1])

    def between(self, start: date | None, end: date | None) -> "PriceSeries":
        """The bars in [start, end]; a bound outside the data is an ``OutsideData`` error."""
        if not len(self.dates):
            raise OutsideData(f"{self.ticker} has no prices in {self.source.value}")
        slack = np.timedelta64(_RANGE_SLACK_DAYS, "D")
        if start is not None and np.datetime64(start, "D") < self.dates[0] - slack:
            raise OutsideData(f"start {start} is before the first bar of {self.ticker} ({self.first})")
        if end is not None and np.datetime64(end, "D") > self.dates[-1] + slack:
            exc = OutsideData(f"end {end} is after the last bar of {self.ticker} ({self.last})")
            exc.field = "end"
            raise exc
        if start is not None and start > self.last:
            raise OutsideData(f"start {start} is after the last bar of {self.ticker} ({self.last})")
        if end is not None and end < self.first:
            exc = OutsideData(f"end {end} is before the first bar of {self.ticker} ({self.first})")
            exc.field = "end"
            raise exc
        lo = 0 if start is None else int(np.searchsorted(self.dates, np.datetime64(start, "D"), side="left"))
        hi = len(self.dates) if end is None else int(np.searchsorted(self.dates, np.datetime64(end, "D"), "right"))
        if hi - lo < 2:
            raise OutsideData(f"{self.ticker} has {hi - lo} bar(s) between {start} and {end}; a backtest needs 2")
        return PriceSeries(self.ticker, self.source, self.dates[lo:hi], self.close[lo:hi])

    def periods_per_year(self) -> float:
        """Bars per year, read off the data itself (about 252 for trading days, 52 for weeks)."""
        days = (self.dates[-1] - self.dates[0]).astype("timedelta64[D]").astype(np.int64)
        if days <= 0:
            return 252.0
        return round((len(self.dates) - 1) * 365.25 / float(days), 1)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.dates.astype("datetime64[D]").astype("<i8").tobytes())
        digest.update(self.close.astype("<f8").tobytes())
        return digest.hexdigest()

    def fingerprint(self) -> DataFingerprint:
        return DataFingerprint(
            ticker=self.ticker,
            source=self.source,
            sha256=self.sha256(),
            bars=len(self.dates),
            first=self.first,
            last=self.last,
            periods_per_year=self.periods_per_year(),
        )


def _to_date(value: np.datetime64) -> date:
    result: date = value.astype("datetime64[D]").item()
    return result
