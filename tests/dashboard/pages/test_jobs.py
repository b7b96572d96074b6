import uuid
from datetime import UTC, datetime, timedelta, timezone

from dashboard.pages.jobs import grid_row, shown_time


def test_times_are_shown_in_utc_to_the_second() -> None:
    paris = timezone(timedelta(hours=1))
    assert shown_time(datetime(2026, 11, 30, 13, 5, 7, 900_000, tzinfo=paris)) == "2026-11-30 12:05:07"
    assert shown_time(None) is None


def test_a_grid_row_links_to_its_job_by_a_short_id() -> None:
    job_id = uuid.UUID("6524979e-fb89-4fee-bb57-6c9935428bc9")
    row = grid_row(
        {
            "id": job_id,
            "status": "RUNNING",
            "created_at": datetime(2026, 11, 30, tzinfo=UTC),
            "started_at": None,
            "completed_at": None,
            "updated_at": datetime(2026, 11, 30, tzinfo=UTC),
        }
    )
    assert row["link"] == f"[6524979e](/jobs/{job_id})"
    assert row["id"] == str(job_id)
    assert (row["created_at"], row["started_at"]) == ("2026-11-30 00:00:00", None)
