import socket
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from market_data.bounded_cache import SERIES_KEPT
from market_data.providers import MarketData
from market_data.series import MarketDataUnavailable, OutsideData, UnknownTicker
from market_data.synthetic import SyntheticProvider
from schemas.sweeps import DataSource
from tests.market_data_api import MarketDataApi, market_data_api


@pytest.fixture
def api() -> Iterator[MarketDataApi]:
    with market_data_api() as server:
        yield server


def providers(tmp_path: Path, url: str | None = None, **http: float) -> MarketData:
    return MarketData(
        files_folder=tmp_path,
        http_base_url=url,
        http_timeout_seconds=http.get("timeout", 2.0),
        http_attempts=int(http.get("attempts", 3)),
    )


def test_bundled_prices_are_real_weekly_closes_that_ship_with_plotly(tmp_path: Path) -> None:
    series = providers(tmp_path).load(DataSource.BUNDLED, "AAPL", None, None)
    assert (series.first, series.last, len(series.close)) == (date(2018, 1, 1), date(2019, 12, 30), 105)
    assert series.periods_per_year() == pytest.approx(52, abs=1)


def test_a_date_range_selects_bars_inclusively(tmp_path: Path) -> None:
    series = providers(tmp_path).load(DataSource.BUNDLED, "MSFT", date(2018, 6, 4), date(2018, 6, 25))
    assert [str(d) for d in series.dates] == ["2018-06-04", "2018-06-11", "2018-06-18", "2018-06-25"]


def test_synthetic_prices_are_the_same_for_the_same_ticker_whatever_range_is_asked(tmp_path: Path) -> None:
    market = providers(tmp_path)
    whole = market.load(DataSource.SYNTHETIC, "ZZZ", date(2015, 1, 1), date(2015, 12, 31))
    part = market.load(DataSource.SYNTHETIC, "ZZZ", date(2015, 6, 1), date(2015, 6, 30))
    assert np.isin(part.close, whole.close).all()
    assert (
        MarketData(files_folder=tmp_path, http_base_url=None)
        .load(DataSource.SYNTHETIC, "ZZZ", date(2015, 1, 1), date(2015, 12, 31))
        .sha256()
        == whole.sha256()
    )
    assert market.load(DataSource.SYNTHETIC, "YYY", date(2015, 1, 1), date(2015, 12, 31)).sha256() != whole.sha256()


def test_csv_and_parquet_files_are_read_with_adjusted_closes_preferred(tmp_path: Path) -> None:
    (tmp_path / "ACME.csv").write_text("Date,Close,Adj Close\n2020-01-03,11,10.5\n2020-01-02,10,9.5\n")
    pq.write_table(pa.table({"date": ["2020-01-02", "2020-01-03"], "close": [20.0, 21.0]}), tmp_path / "BETA.parquet")
    market = providers(tmp_path)
    acme = market.load(DataSource.FILES, "ACME", None, None)
    assert acme.close.tolist() == [9.5, 10.5]  # sorted by date, adjusted
    assert market.load(DataSource.FILES, "BETA", None, None).close.tolist() == [20.0, 21.0]
    assert market.files.tickers() == ["ACME", "BETA"]


def test_a_replaced_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "ACME.csv"
    path.write_text("date,close\n2020-01-02,10\n2020-01-03,11\n")
    market = providers(tmp_path)
    before = market.load(DataSource.FILES, "ACME", None, None).sha256()
    time.sleep(0.01)
    path.write_text("date,close\n2020-01-02,10\n2020-01-03,12\n")
    assert market.load(DataSource.FILES, "ACME", None, None).sha256() != before


def test_a_file_without_a_close_column_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ACME.csv").write_text("date,price\n2020-01-02,10\n")
    with pytest.raises(MarketDataUnavailable, match="needs a date column and a close column"):
        providers(tmp_path).load(DataSource.FILES, "ACME", None, None)


def test_unknown_tickers_and_dates_outside_the_data_are_refused(tmp_path: Path) -> None:
    market = providers(tmp_path)
    with pytest.raises(UnknownTicker, match="it has AAPL, AMZN"):
        market.load(DataSource.BUNDLED, "TSLA", None, None)
    with pytest.raises(OutsideData, match="before the first bar"):
        market.load(DataSource.BUNDLED, "AAPL", date(2010, 1, 1), None)
    with pytest.raises(OutsideData, match="after the last bar"):
        market.load(DataSource.BUNDLED, "AAPL", None, date(2024, 1, 1))


def test_the_http_api_serves_prices_for_the_asked_range(tmp_path: Path, api: MarketDataApi) -> None:
    series = providers(tmp_path, api.url).load(DataSource.HTTP, "ACME", date(2021, 1, 1), date(2021, 12, 31))
    assert series.first >= date(2021, 1, 1)
    assert series.last <= date(2021, 12, 31)
    assert "start=2021-01-01" in api.requests[0]


def test_the_http_api_is_retried_with_backoff_when_it_fails_for_a_while(tmp_path: Path, api: MarketDataApi) -> None:
    api.fail_next = 2
    series = providers(tmp_path, api.url, attempts=4).load(DataSource.HTTP, "ACME", None, None)
    assert len(series.close) > 100
    assert len(api.requests) == 3


def test_the_http_api_being_down_is_a_clear_retryable_failure(tmp_path: Path, api: MarketDataApi) -> None:
    api.fail_next = 10
    with pytest.raises(MarketDataUnavailable, match="unavailable after 3 attempts: HTTP 503") as failure:
        providers(tmp_path, api.url, attempts=3).load(DataSource.HTTP, "ACME", None, None)
    assert failure.value.retryable


def test_nothing_listening_is_a_clear_failure_too(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(MarketDataUnavailable, match="ConnectError"):
        providers(tmp_path, f"http://127.0.0.1:{port}", attempts=2).load(DataSource.HTTP, "ACME", None, None)


def test_a_hanging_api_times_out(tmp_path: Path, api: MarketDataApi) -> None:
    api.hang_seconds = 1.5
    with pytest.raises(MarketDataUnavailable, match="ReadTimeout"):
        providers(tmp_path, api.url, timeout=0.3, attempts=1).load(DataSource.HTTP, "ACME", None, None)


def test_an_unknown_ticker_at_the_http_api_is_not_retried(tmp_path: Path, api: MarketDataApi) -> None:
    with pytest.raises(UnknownTicker, match="answered 404"):
        providers(tmp_path, api.url).load(DataSource.HTTP, "NOPE", None, None)
    assert len(api.requests) == 1


def test_the_data_hash_covers_dates_and_closes(tmp_path: Path) -> None:
    series = providers(tmp_path).load(DataSource.BUNDLED, "AAPL", None, None)
    fingerprint = series.fingerprint()
    assert fingerprint.sha256 == series.sha256()
    shifted = series.between(date(2018, 1, 8), None)
    assert shifted.sha256() != series.sha256()


def test_the_synthetic_source_keeps_a_bounded_number_of_series_whatever_tickers_are_asked_for() -> None:
    provider = SyntheticProvider()
    for number in range(SERIES_KEPT + 40):
        provider.load(f"T{number}")
    assert len(provider._cache) == SERIES_KEPT
    assert provider.load("T0").close[0] == SyntheticProvider().load("T0").close[0]  # evicted, made again the same
