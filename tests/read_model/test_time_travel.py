from datetime import timedelta

import pytest

from read_model.time_travel import AsOf, fold_job, parse_as_of
from schemas.events import Event
from tests.builders import job_lifecycle


def history() -> list[tuple[Event, int, int]]:
    events = job_lifecycle()
    spaced = [
        e.model_copy(update={"occurred_at": events[0].occurred_at + timedelta(seconds=i)}) for i, e in enumerate(events)
    ]
    return [(event, 3, 10 + i) for i, event in enumerate(spaced)]


def test_the_state_as_of_an_offset_stops_at_that_event() -> None:
    row = fold_job(history(), AsOf(offset=11))
    assert row is not None
    assert (row.status, row.event_count, row.log_offset) == ("RUNNING", 2, 11)


def test_the_state_as_of_a_time_includes_what_had_happened_by_then() -> None:
    events = history()
    row = fold_job(events, AsOf(moment=events[0][0].occurred_at + timedelta(seconds=0.5)))
    assert row is not None
    assert row.status == "QUEUED"


def test_now_is_the_whole_history_and_before_the_first_event_there_is_no_job() -> None:
    row = fold_job(history())
    assert row is not None
    assert row.status == "COMPLETED"
    assert fold_job(history(), AsOf(offset=9)) is None


def test_as_of_reads_an_offset_or_an_iso_time_and_rejects_anything_else() -> None:
    assert parse_as_of("42") == AsOf(offset=42)
    assert parse_as_of("2026-01-02T03:04:05Z").moment is not None
    assert parse_as_of(None) == AsOf()
    with pytest.raises(ValueError, match="offset"):
        parse_as_of("yesterday")
