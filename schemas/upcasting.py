"""Reading old versions of events as the current ones.

A published ``(event_type, schema_version)`` never changes; when an event needs a new shape, a new version is added
and an upcaster here turns the previous version's payload into it. Upcasters chain (v1 → v2 → v3), work on plain
JSON, and are pure, so the log can be replayed through them any number of times with the same result.
"""

from collections.abc import Callable
from typing import Any

PayloadUpcaster = Callable[[dict[str, Any]], dict[str, Any]]


def split_worker(worker: str) -> tuple[str, int | None]:
    """``"host:pid"`` → ``("host", pid)``; a worker name without a numeric pid is all host."""
    host, separator, pid = worker.rpartition(":")
    if separator and host and pid.isdigit() and int(pid) > 0:
        return host, int(pid)
    return worker, None


def _job_started_v1(payload: dict[str, Any]) -> dict[str, Any]:
    host, process_id = split_worker(payload["worker"])
    upcast = {key: value for key, value in payload.items() if key != "worker"}
    return upcast | {"host": host, "process_id": process_id}


UPCASTERS: dict[tuple[str, int], PayloadUpcaster] = {
    ("JobStarted", 1): _job_started_v1,
}


def can_upcast(envelope: dict[str, Any]) -> bool:
    return (envelope.get("event_type"), envelope.get("schema_version")) in UPCASTERS


def upcast(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope at the newest version its type has; unchanged when it is at that version already."""
    key = (envelope.get("event_type"), envelope.get("schema_version"))
    while key in UPCASTERS:
        event_type, version = key
        envelope = envelope | {"schema_version": version + 1, "payload": UPCASTERS[key](dict(envelope["payload"]))}
        key = (event_type, version + 1)
    return envelope
