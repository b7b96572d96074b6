"""How a job type is retried: attempts, exponential backoff with jitter, a cap, a per-attempt timeout, and the
errors that no retry can fix."""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    timeout_seconds: float | None = None
    """Per attempt; an attempt over it fails with AttemptTimedOut, which is retried."""
    non_retryable: tuple[str, ...] = ()
    """Error type names (the exception class, or JobError's) that fail the job at once."""

    def delay(self, failed_attempt: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with "equal jitter": half the step is fixed, half random, so retries spread out."""
        step = min(self.max_delay_seconds, self.base_delay_seconds * 2.0 ** (failed_attempt - 1))
        jitter: float = (rng or random).uniform(0, step / 2)
        return step / 2 + jitter

    def retries(self, error_type: str, retryable: bool, failed_attempt: int) -> bool:
        return retryable and error_type not in self.non_retryable and failed_attempt < self.max_attempts
