from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard import figures

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def cell(fast: float, slow: float, window: float, score: float | None) -> dict[str, Any]:
    parameters = {"fast": fast, "slow": slow, "window": window}
    key = ",".join(f"{k}={v:g}" for k, v in sorted(parameters.items()))
    return {"parameters": parameters, "parameters_key": key, "score": score}


def test_the_heatmap_shows_the_best_value_at_each_point_over_the_other_parameters() -> None:
    cells = [cell(2, 10, 1, 0.5), cell(2, 10, 2, 1.5), cell(3, 10, 1, -1.0), cell(2, 12, 1, None)]
    heatmap = figures.sweep_heatmap(cells, "fast", "slow", "score").data[0]
    assert list(heatmap.x) == [2, 3]
    assert list(heatmap.y) == [10]  # the point whose only backtest scored nothing is not drawn
    assert [list(row) for row in heatmap.z] == [[1.5, -1.0]]
    assert heatmap.customdata[0][0] == "fast=2,slow=10,window=2"


def test_a_heatmap_without_results_says_so() -> None:
    figure = figures.sweep_heatmap([], "fast", "slow", "score")
    assert figure.data == ()
    assert "no results yet" in figure.layout.annotations[0].text


def event(kind: str, seconds: int, offset: int) -> dict[str, Any]:
    return {
        "event_type": kind,
        "occurred_at": T0 + timedelta(seconds=seconds),
        "log_partition": 3,
        "log_offset": offset,
    }


def test_the_timeline_draws_each_attempt_from_its_start_to_what_ended_it() -> None:
    events = [
        event("JobRequested", 0, 1),
        event("JobStarted", 1, 2),
        event("JobRetryScheduled", 4, 3),
        event("JobStarted", 6, 4),
        event("JobCompleted", 9, 5),
    ]
    figure = figures.job_timeline(events, now=T0 + timedelta(seconds=60))
    attempts = {trace.name: (list(trace.x), trace.line.color) for trace in figure.data if trace.mode == "lines"}
    assert attempts == {
        "attempt 1": ([T0 + timedelta(seconds=1), T0 + timedelta(seconds=4)], figures.STATUS_COLOURS["FAILED"]),
        "attempt 2": ([T0 + timedelta(seconds=6), T0 + timedelta(seconds=9)], figures.STATUS_COLOURS["COMPLETED"]),
    }
    markers = next(trace for trace in figure.data if trace.mode == "markers")
    assert len(markers.x) == 5


def test_a_running_attempt_reaches_until_now() -> None:
    now = T0 + timedelta(seconds=30)
    figure = figures.job_timeline([event("JobRequested", 0, 1), event("JobStarted", 2, 2)], now=now)
    running = next(trace for trace in figure.data if trace.name == "attempt 1")
    assert list(running.x) == [T0 + timedelta(seconds=2), now]
    assert running.line.color == figures.STATUS_COLOURS["RUNNING"]


def test_in_and_out_of_sample_bars_pair_each_best_cell_and_skip_cells_never_tested_out_of_sample() -> None:
    best = [
        {
            "ticker": "AAPL",
            "rank": 1,
            "strategy_type": "sma",
            "parameters": {"fast": 2},
            "metrics": {"sharpe": 1.2},
            "out_of_sample": {"sharpe": 0.4},
        },
        {
            "ticker": "AAPL",
            "rank": 2,
            "strategy_type": "sma",
            "parameters": {"fast": 3},
            "metrics": {"sharpe": 1.0},
            "out_of_sample": None,
        },
    ]
    inside, outside = figures.in_vs_out_of_sample(best, "sharpe").data
    assert (list(inside.x), list(inside.y), list(outside.y)) == (["AAPL #1"], [1.2], [0.4])
    assert list(inside.customdata) == ["sma fast=2"]


def test_jobs_by_status_keeps_the_lifecycle_order_and_colours() -> None:
    figure = figures.jobs_by_status(
        [{"status": "FAILED", "jobs": 2}, {"status": "QUEUED", "jobs": 5}, {"status": "RUNNING", "jobs": 0}]
    )
    bars = figure.data[0]
    assert list(bars.x) == ["QUEUED", "FAILED"]
    assert list(bars.marker.color) == [figures.STATUS_COLOURS["QUEUED"], figures.STATUS_COLOURS["FAILED"]]


def test_throughput_shows_created_jobs_as_bars_and_their_outcomes_as_lines() -> None:
    rows = [
        {"bucket": T0, "created": 6, "completed": 6, "failed": 0},
        {"bucket": T0 + timedelta(hours=1), "created": 3, "completed": 0, "failed": 3},
    ]
    figure = figures.throughput(rows, T0, T0 + timedelta(hours=2), timedelta(hours=1))
    created, completed, failed = figure.data
    assert (created.type, list(created.y)) == ("bar", [6, 3])
    assert list(created.width) == [3_600_000, 3_600_000]  # each bar spans its hour
    assert list(figure.layout.xaxis.range) == [T0, T0 + timedelta(hours=2)]
    assert (completed.name, list(completed.y), failed.name, list(failed.y)) == ("completed", [6, 0], "failed", [0, 3])
