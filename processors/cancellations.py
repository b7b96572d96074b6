"""Cancellations this worker has read on the event stream, for running jobs to check at their checkpoints."""

from collections import OrderedDict


class CancelRegistry:
    """Job ids whose cancellation was requested; bounded, oldest forgotten first."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def request(self, job_id: str) -> None:
        self._ids[job_id] = None
        self._ids.move_to_end(job_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def requested(self, job_id: str) -> bool:
        return job_id in self._ids
