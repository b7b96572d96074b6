"""Login throttling: failures per e-mail address lock it for a while; failures per client address slow it down.

Counting per address typed, whether or not an account has it, makes the answers the same for known and unknown
accounts. The per-client limit lives in the process: it blunts one machine trying many accounts.
"""

import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, case, delete, select
from sqlalchemy.dialects.postgresql import insert

from kernel.database import EVERY_TENANT, scoped_sync
from schemas.identity_tables import login_throttle


@dataclass(frozen=True)
class Locked:
    until: datetime

    def message(self) -> str:
        return (
            f"too many failed logins: this account is locked until {self.until:%H:%M} UTC; "
            "try again then, or ask an admin to reset the password"
        )


class AccountThrottle:
    def __init__(self, engine: Engine, max_failures: int, lockout: timedelta) -> None:
        self._engine = engine
        self._max_failures = max_failures
        self._lockout = lockout

    def locked(self, email: str) -> Locked | None:
        with scoped_sync(self._engine, EVERY_TENANT) as connection:
            until = connection.execute(
                select(login_throttle.c.locked_until).where(login_throttle.c.email == email.lower())
            ).scalar()
        return Locked(until) if until is not None and until > datetime.now(UTC) else None

    def failed(self, email: str) -> Locked | None:
        """Counts a failure; the lock it causes, if it is the one too many. Failures older than the lockout window
        are forgotten."""
        now = datetime.now(UTC)
        recent = login_throttle.c.last_failure_at >= now - self._lockout
        statement = (
            insert(login_throttle)
            .values(email=email.lower(), failures=1, last_failure_at=now)
            .on_conflict_do_update(
                index_elements=["email"],
                set_={"failures": case((recent, login_throttle.c.failures + 1), else_=1), "last_failure_at": now},
            )
            .returning(login_throttle.c.failures)
        )
        with scoped_sync(self._engine, EVERY_TENANT) as connection:
            failures = int(connection.execute(statement).scalar_one())
            if failures < self._max_failures:
                return None
            until = now + self._lockout
            connection.execute(
                login_throttle.update().where(login_throttle.c.email == email.lower()).values(locked_until=until)
            )
        return Locked(until)

    def succeeded(self, email: str) -> None:
        with scoped_sync(self._engine, EVERY_TENANT) as connection:
            connection.execute(delete(login_throttle).where(login_throttle.c.email == email.lower()))


class ClientThrottle:
    """At most ``attempts`` logins per client address in ``window`` seconds, in this process."""

    def __init__(self, attempts: int = 30, window: float = 300.0, max_clients: int = 10_000) -> None:
        self._attempts = attempts
        self._window = window
        self._max_clients = max_clients
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, client: str) -> float | None:
        """Seconds to wait before this client may try again; None when it may try now (and the try is counted)."""
        now = time.monotonic()
        if len(self._seen) > self._max_clients:  # bounded, whatever addresses arrive
            self._seen.clear()
        recent = self._seen[client]
        while recent and now - recent[0] > self._window:
            recent.popleft()
        if len(recent) >= self._attempts:
            return self._window - (now - recent[0])
        recent.append(now)
        return None
