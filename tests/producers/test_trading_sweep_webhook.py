import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kernel.settings import Settings
from producers.app import create_app
from schemas.events import JobRequested
from schemas.sweeps import SWEEP_JOB_TYPE, StrategyGrid
from tests.fakes import FakeJobReader, FakePublisher, receiver_services

HEADERS = {"X-Tenant-ID": "acme"}


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
async def client(publisher: FakePublisher, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "ACME.csv").write_text("Date,Close\n2020-01-02,10\n2020-01-03,11\n2020-01-06,12\n")
    settings = Settings(sweep_max_backtests=5000, market_data_dir=tmp_path)
    services = receiver_services(settings, publisher, FakeJobReader())
    app = create_app(settings, services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def sweep(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tickers": ["AAPL", "MSFT", "GOOG"],
        "strategies": [
            {"type": "sma_crossover", "parameters": {"fast": {"start": 2, "stop": 20, "step": 1}, "slow": [25, 30]}},
            {"type": "rsi_reversion", "parameters": {"window": [14], "lower": [25, 30], "upper": [70, 75]}},
        ],
    }
    return body | overrides


async def error_of(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/webhook/trading-sweep", json=body, headers=HEADERS)
    assert response.status_code == 422, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_valid_sweep_is_queued_as_a_trading_sweep_job(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await client.post("/webhook/trading-sweep", json=sweep(correlation_id="c-1"), headers=HEADERS)
    assert response.status_code == 202, response.text
    [event] = publisher.events
    assert isinstance(event, JobRequested)
    assert event.payload.job_type == SWEEP_JOB_TYPE
    assert event.correlation_id == "c-1"
    assert event.payload.parameters["tickers"] == ["AAPL", "MSFT", "GOOG"]
    assert "correlation_id" not in event.payload.parameters


async def test_a_sweep_is_also_accepted_through_the_generic_job_webhook(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    body = {"job_type": SWEEP_JOB_TYPE, "parameters": sweep(tickers=["TSLA"])}
    response = await client.post("/webhook/generic-job", json=body, headers=HEADERS)
    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == ["tickers", 0]
    assert publisher.events == []


async def test_each_strategy_runs_with_the_regime_signal_unless_it_asks_for_crossings(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    body = sweep()
    body["strategies"][1] |= {"signal": "crossing"}
    response = await client.post("/webhook/trading-sweep", json=body, headers=HEADERS)
    assert response.status_code == 202, response.text
    [event] = publisher.events
    # Recorded in the request either way, so that what ran is on the log, not implied by a default.
    assert [grid["signal"] for grid in event.payload.parameters["strategies"]] == ["regime", "crossing"]


async def test_an_unknown_signal_is_refused_naming_the_two_there_are(client: httpx.AsyncClient) -> None:
    body = sweep()
    body["strategies"][0] |= {"signal": "breakout"}
    error = await error_of(client, body)
    assert error["details"][0]["loc"] == ["strategies", 0, "signal"]
    assert "'regime' or 'crossing'" in error["details"][0]["msg"]


async def test_a_strategy_type_given_twice_is_refused(client: httpx.AsyncClient, publisher: FakePublisher) -> None:
    grid = {"type": "sma_crossover", "parameters": {"fast": [5], "slow": [20]}}
    error = await error_of(client, sweep(strategies=[grid, grid | {"signal": "crossing"}]))
    assert "strategy sma_crossover appears more than once" in error["details"][0]["msg"]
    assert publisher.events == []


async def test_an_unknown_strategy_is_named_with_the_known_ones(client: httpx.AsyncClient) -> None:
    body = sweep(strategies=[{"type": "turtle", "parameters": {}}])
    error = await error_of(client, body)
    assert error["details"][0]["loc"] == ["strategies", 0, "type"]
    assert "sma_crossover" in error["details"][0]["msg"]


async def test_an_unknown_parameter_is_named_with_the_strategys_parameters(client: httpx.AsyncClient) -> None:
    body = sweep(strategies=[{"type": "sma_crossover", "parameters": {"fast": [5], "slow": [20], "lag": [1]}}])
    error = await error_of(client, body)
    assert error["details"][0]["loc"] == ["strategies", 0]
    assert "unknown parameter(s) lag" in error["details"][0]["msg"]
    assert "fast, slow" in error["details"][0]["msg"]


async def test_an_inverted_range_is_refused(client: httpx.AsyncClient) -> None:
    body = sweep(
        strategies=[
            {"type": "momentum", "parameters": {"window": {"start": 20, "stop": 5, "step": 1}, "threshold": [0]}}
        ]
    )
    error = await error_of(client, body)
    assert any("inverted range" in d["msg"] for d in error["details"])


async def test_an_empty_list_of_values_is_refused(client: httpx.AsyncClient) -> None:
    body = sweep(strategies=[{"type": "momentum", "parameters": {"window": [], "threshold": [0]}}])
    error = await error_of(client, body)
    assert any(d["loc"][:4] == ["strategies", 0, "parameters", "window"] for d in error["details"])


async def test_a_grid_whose_every_combination_breaks_the_ordering_rule_is_refused(client: httpx.AsyncClient) -> None:
    body = sweep(strategies=[{"type": "sma_crossover", "parameters": {"fast": [50], "slow": [10, 20]}}])
    error = await error_of(client, body)
    assert error["error"] == "empty_grid"
    assert "fast < slow" in error["details"][0]["msg"]


async def test_a_grid_over_the_limit_says_how_big_it_was(client: httpx.AsyncClient) -> None:
    windows = {"fast": {"start": 2, "stop": 60, "step": 1}, "slow": {"start": 3, "stop": 61, "step": 1}}
    body = sweep(strategies=[{"type": "sma_crossover", "parameters": windows}])
    error = await error_of(client, body)
    assert error["error"] == "grid_too_large"
    # 59 fast x 59 slow windows, of which 1,770 pairs have fast < slow.
    assert "5,310 backtests (3 ticker(s) x 1,770 parameter combinations)" in error["message"]
    assert "the limit is 5,000" in error["message"]


async def test_a_huge_grid_is_refused_without_being_expanded(client: httpx.AsyncClient) -> None:
    huge = {"start": 1, "stop": 2000, "step": 1}
    body = sweep(strategies=[{"type": "macd", "parameters": {"fast": huge, "slow": huge, "signal": huge}}])
    error = await error_of(client, body)
    # Counted, not expanded: 1,999,000 fast < slow pairs x 2,000 signal windows, per ticker.
    assert "11,994,000,000 backtests (3 ticker(s) x 3,998,000,000 parameter combinations)" in error["message"]


async def test_a_ticker_the_source_does_not_have_is_named(client: httpx.AsyncClient) -> None:
    error = await error_of(client, sweep(tickers=["AAPL", "TSLA"]))
    assert error["details"][0]["loc"] == ["tickers", 1]
    assert "unknown ticker 'TSLA'" in error["details"][0]["msg"]
    assert "AAPL, AMZN" in error["details"][0]["msg"]


async def test_dates_outside_the_data_are_refused(client: httpx.AsyncClient) -> None:
    error = await error_of(client, sweep(start="2015-01-01"))
    assert error["details"][0]["loc"] == ["start"]
    assert "before the first bar" in error["details"][0]["msg"]
    error = await error_of(client, sweep(start="2019-01-01", end="2030-01-01"))
    assert error["details"][0]["loc"] == ["end"]


async def test_end_before_start_is_refused(client: httpx.AsyncClient) -> None:
    error = await error_of(client, sweep(start="2019-06-01", end="2019-01-01"))
    assert "before start" in error["details"][0]["msg"]


async def test_a_files_source_knows_the_tickers_in_its_folder(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    body = sweep(
        tickers=["ACME"],
        data_source="files",
        strategies=[{"type": "momentum", "parameters": {"window": [1], "threshold": [0]}}],
    )
    response = await client.post("/webhook/trading-sweep", json=body, headers=HEADERS)
    assert response.status_code == 202, response.text
    error = await error_of(client, body | {"tickers": ["NOPE"]})
    assert "no NOPE.csv or NOPE.parquet" in error["details"][0]["msg"]


async def test_the_http_source_is_refused_when_no_api_is_configured(client: httpx.AsyncClient) -> None:
    error = await error_of(client, sweep(data_source="http"))
    assert error["details"][0]["loc"] == ["data_source"]


@pytest.mark.parametrize("step", [1e-12, 0.01])
async def test_a_range_with_too_many_values_is_refused_by_arithmetic_naming_the_field(
    client: httpx.AsyncClient, step: float
) -> None:
    """The attack that drove a receiver to 17 GB: no list of values is ever made for it (the test would not end)."""
    body = sweep(
        strategies=[
            {"type": "sma_crossover", "parameters": {"fast": {"start": 2, "stop": 500, "step": step}, "slow": [600]}}
        ]
    )
    error = await asyncio.wait_for(error_of(client, body), timeout=5)
    detail = error["details"][0]
    assert detail["loc"][:4] == ["strategies", 0, "parameters", "fast"]
    assert "a parameter takes at most 10,000" in detail["msg"]


async def test_a_range_too_wide_to_count_is_refused_naming_the_field_not_answered_with_a_500(
    client: httpx.AsyncClient,
) -> None:
    # Found by the fuzzer: (stop - start) / step overflows to infinity, which has no whole number of values.
    body = sweep(
        strategies=[
            {
                "type": "sma_crossover",
                "parameters": {"fast": {"start": -2e257, "stop": 6e16, "step": 6e-161}, "slow": [600]},
            }
        ]
    )
    error = await error_of(client, body)
    detail = error["details"][0]
    assert detail["loc"][:4] == ["strategies", 0, "parameters", "fast"]
    assert "too many values to count" in detail["msg"]


def test_a_grids_combinations_are_counted_without_expanding_it_and_match_the_expansion() -> None:
    rng = random.Random(11)
    for _ in range(200):
        fast = {"start": rng.randint(2, 30), "stop": rng.randint(30, 80), "step": rng.choice([1, 2, 3, 5])}
        slow = sorted(rng.sample(range(5, 120), rng.randint(1, 12)))
        grid = StrategyGrid.model_validate({"type": "sma_crossover", "parameters": {"fast": fast, "slow": slow}})
        assert grid.combination_count() == len(grid.combinations())
    rsi = StrategyGrid.model_validate(
        {
            "type": "rsi_reversion",
            "parameters": {
                "window": [7, 14, 21],
                "lower": {"start": 10, "stop": 50, "step": 5},
                "upper": [40, 45, 70, 90],
            },
        }
    )
    assert rsi.combination_count() == len(rsi.combinations())
