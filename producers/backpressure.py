"""Load shedding: a receiver with too many appends waiting for the broker answers 503 at once.

Without a bound, a slow or absent broker makes every new request wait its full publish timeout, and the waiting
requests (their bodies, their tasks) grow without limit. With one, the receiver stays responsive and tells
integrators when to come back.
"""

from prometheus_client import Counter

from kernel.publisher import Appended, EventPublisher
from producers.errors import ApiError
from schemas.events import Event

SHED_REQUESTS = Counter("zixly_receiver_shed_total", "Requests refused because too many appends were waiting")


class BoundedPublisher:
    def __init__(self, publisher: EventPublisher, max_in_flight: int) -> None:
        self._publisher = publisher
        self._max_in_flight = max_in_flight
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def publish(self, event: Event) -> Appended:
        if self._in_flight >= self._max_in_flight:
            SHED_REQUESTS.inc()
            raise ApiError(
                503,
                "overloaded",
                f"{self._in_flight} events are already waiting for the broker; nothing was accepted, retry shortly",
                headers={"Retry-After": "1"},
            )
        self._in_flight += 1
        try:
            return await self._publisher.publish(event)
        finally:
            self._in_flight -= 1
