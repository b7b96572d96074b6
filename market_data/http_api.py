"""Prices from a market-data HTTP API, with timeouts and retries with backoff.

The API contract (documented in docs/market-data.md): ``GET {base}/v1/prices/{ticker}?start=YYYY-MM-DD&end=...``
answers ``{"ticker": ..., "bars": [{"date": "YYYY-MM-DD", "close": 123.4}, ...]}``, or 404 for an unknown ticker.
"""

from datetime import date

import httpx
import numpy as np
from pydantic import BaseModel, ValidationError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential, wait_random

from kernel.outbound import GuardedSyncTransport, OutboundPolicy, OutboundRefused
from market_data.bounded_cache import BoundedCache
from market_data.series import MarketDataUnavailable, PriceSeries, UnknownTicker
from schemas.sweeps import DataSource


class _Bar(BaseModel):
    date: date
    close: float


class _PricesResponse(BaseModel):
    ticker: str
    bars: list[_Bar]


class _Retryable(Exception):
    pass


class HttpApiProvider:
    source = DataSource.HTTP
    # Asking a remote API on every webhook would tie ingest to its latency; the worker checks instead.
    checked_at_ingest = False

    def __init__(
        self, base_url: str, *, timeout_seconds: float = 10.0, attempts: int = 4, api_key: str | None = None
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._attempts = attempts
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Only the configured API, at the address its name resolved to when checked: a ticker cannot steer it.
        self._http = httpx.Client(transport=GuardedSyncTransport(OutboundPolicy.only(self._base_url)))
        self._cache: BoundedCache[PriceSeries] = BoundedCache()

    def tickers(self) -> list[str] | None:
        return None

    def load_range(self, ticker: str, start: date | None, end: date | None) -> PriceSeries:
        return self._cache.get_or_make((ticker, start, end), lambda: self._fetch(ticker, start, end))

    def _fetch(self, ticker: str, start: date | None, end: date | None) -> PriceSeries:
        params = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
        url = f"{self._base_url}/v1/prices/{ticker}"
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.2, max=5) + wait_random(0, 0.2),
                retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
                reraise=True,
            ):
                with attempt:
                    response = self._get(url, params)
        except _Retryable as exc:
            raise MarketDataUnavailable(
                f"market-data API at {self._base_url} is unavailable after {self._attempts} attempts: {exc}"
            ) from exc
        if response.status_code == 404:
            raise UnknownTicker(f"unknown ticker {ticker!r} for data source 'http' ({url} answered 404)")
        if response.status_code != 200:
            raise MarketDataUnavailable(f"market-data API answered {response.status_code} for {url}")
        try:
            body = _PricesResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise MarketDataUnavailable(f"market-data API sent an unreadable body for {ticker}: {exc}") from exc
        dates = np.array([bar.date.isoformat() for bar in body.bars], dtype="datetime64[D]")
        close = np.array([bar.close for bar in body.bars], dtype=np.float64)
        order = np.argsort(dates, kind="stable")
        return PriceSeries(ticker, self.source, dates[order], close[order])

    def _get(self, url: str, params: dict[str, str]) -> httpx.Response:
        try:
            response = self._http.get(url, params=params, timeout=self._timeout, headers=self._headers)
        except (httpx.HTTPError, OutboundRefused) as exc:  # connection refused, timeouts, protocol errors
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (429, 502, 503, 504) or response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        return response
