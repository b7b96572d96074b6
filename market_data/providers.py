"""One entry point for every source: load a ticker's prices for a date range, or check a request up front."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol

from kernel.settings import Settings
from market_data.bundled import BundledProvider
from market_data.files import FilesProvider
from market_data.http_api import HttpApiProvider
from market_data.series import MarketDataError, MarketDataUnavailable, PriceSeries
from market_data.synthetic import SyntheticProvider
from schemas.sweeps import DataSource


class WholeSeriesProvider(Protocol):
    checked_at_ingest: bool

    def load(self, ticker: str) -> PriceSeries: ...


@dataclass(frozen=True)
class DataProblem:
    field: str
    message: str


class MarketData:
    @classmethod
    def from_settings(cls, settings: Settings) -> "MarketData":
        return cls(
            files_folder=settings.market_data_folder,
            http_base_url=settings.market_data_url,
            http_timeout_seconds=settings.market_data_timeout_seconds,
            http_attempts=settings.market_data_attempts,
        )

    def __init__(
        self,
        *,
        files_folder: Path,
        http_base_url: str | None,
        http_timeout_seconds: float = 10.0,
        http_attempts: int = 4,
        http_api_key: str | None = None,
    ) -> None:
        self.bundled = BundledProvider()
        self.synthetic = SyntheticProvider()
        self.files = FilesProvider(files_folder)
        self.http = (
            HttpApiProvider(
                http_base_url, timeout_seconds=http_timeout_seconds, attempts=http_attempts, api_key=http_api_key
            )
            if http_base_url
            else None
        )

    def load(self, source: DataSource, ticker: str, start: date | None, end: date | None) -> PriceSeries:
        """The bars in [start, end] (the source's whole history where a bound is omitted)."""
        if source is DataSource.HTTP:
            if self.http is None:
                raise MarketDataUnavailable("no market-data API is configured (ZIXLY_MARKET_DATA_URL)")
            return self.http.load_range(ticker, start, end).between(start, end)
        if source is DataSource.SYNTHETIC:
            self.synthetic.check_range(start, end)
            default_start, default_end = self.synthetic.default_range()
            if start is None and end is None:
                start, end = default_start, default_end
        providers: dict[DataSource, WholeSeriesProvider] = {
            DataSource.BUNDLED: self.bundled,
            DataSource.SYNTHETIC: self.synthetic,
            DataSource.FILES: self.files,
        }
        provider = providers[source]
        return provider.load(ticker).between(start, end)

    def problems(
        self, source: DataSource, tickers: list[str], start: date | None, end: date | None
    ) -> list[DataProblem]:
        """What is wrong with a request, for the receiver to answer 422 before anything is queued.

        Sources that are slow to ask (the HTTP API) are checked by the worker instead.
        """
        if source is DataSource.HTTP:
            if self.http is None:
                return [DataProblem("data_source", "no market-data API is configured for data source 'http'")]
            return []
        found = []
        for index, ticker in enumerate(tickers):
            try:
                self.load(source, ticker, start, end)
            except MarketDataError as exc:
                field = f"tickers.{index}" if exc.field == "tickers" else exc.field
                found.append(DataProblem(field, str(exc)))
        return found
