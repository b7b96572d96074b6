import pytest

from dashboard.live_updates import QUEUED_CHANGES, JobChangeListener, TooManySubscribers


def test_a_caller_opens_a_bounded_number_of_streams_and_the_server_too() -> None:
    listener = JobChangeListener("postgresql://unused", max_subscribers=5, max_per_owner=2)
    listener.subscribe(lambda row: True, "user:a")
    listener.subscribe(lambda row: True, "user:a")
    with pytest.raises(TooManySubscribers, match="user:a already has 2 streams open"):
        listener.subscribe(lambda row: True, "user:a")
    for owner in ("user:b", "user:c", "user:d"):
        listener.subscribe(lambda row: True, owner)
    with pytest.raises(TooManySubscribers, match="already pushes to 5 screens"):
        listener.subscribe(lambda row: True, "user:e")


def test_a_screen_that_stops_reading_loses_updates_beyond_its_queue_and_nobody_else_does() -> None:
    listener = JobChangeListener("postgresql://unused")
    stuck = listener.subscribe(lambda row: True, "user:a")
    reading = listener.subscribe(lambda row: row["n"] % 2 == 0, "user:b")
    for n in range(QUEUED_CHANGES + 10):
        listener._deliver({"n": n})
        while not reading.queue.empty():
            reading.queue.get_nowait()
    assert stuck.queue.qsize() == QUEUED_CHANGES
    assert stuck.dropped == 10
    assert reading.dropped == 0
