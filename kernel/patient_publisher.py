"""The worker's publisher: it waits out a broker outage instead of failing the work in hand.

A receiver answers 503 when the broker does not acknowledge in time, and the integrator retries. A worker has no one
to hand the failure to: an outcome it cannot append would leave its job half done. So it keeps trying, with
backoff, for ``patience`` seconds; only then does the error surface, and the record it was working on is left
unacknowledged for the next owner of the partition.
"""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential, wait_random

from kernel.dead_letters import DeadLetterSender, Origin
from kernel.logging import get_logger
from kernel.publisher import Appended, EventPublisher, LogUnavailable
from schemas.events import Event

log = get_logger(__name__)
T = TypeVar("T")


async def patiently(call: Callable[[], Awaitable[T]], patience_seconds: float, what: str) -> T:
    """``call()``, retried with backoff while the broker is unavailable, for at most ``patience_seconds`` after the
    first failure."""
    try:
        # Nearly every call succeeds at once; building the retry loop for each cost the worker 7 % of its time.
        return await call()
    except LogUnavailable as exc:
        log.warning("broker unavailable; retrying", what=what, attempt=1, error=str(exc)[:200])
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(LogUnavailable),
        wait=wait_exponential(multiplier=0.2, max=5) + wait_random(0, 0.2),
        stop=stop_after_delay(patience_seconds),
        before_sleep=lambda state: log.warning(
            "broker unavailable; retrying",
            what=what,
            attempt=state.attempt_number,
            error=str(state.outcome.exception() if state.outcome else "")[:200],
        ),
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity either returns or re-raises")


class PatientPublisher:
    def __init__(self, publisher: EventPublisher, patience_seconds: float) -> None:
        self._publisher = publisher
        self._patience = patience_seconds

    async def publish(self, event: Event) -> Appended:
        return await patiently(lambda: self._publisher.publish(event), self._patience, event.event_type)


class PatientDeadLetters:
    def __init__(self, sender: DeadLetterSender, patience_seconds: float) -> None:
        self._sender = sender
        self.topic = sender.topic
        self._patience = patience_seconds

    async def send(self, origin: Origin, error_type: str, error: str, stage: str) -> None:
        await patiently(lambda: self._sender.send(origin, error_type, error, stage), self._patience, "dead letter")
