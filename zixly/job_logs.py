"""One job's path through the services, from the JSON logs of the local stack (``zixly logs --job ID``).

Every service logs one JSON object a line and binds the job, tenant and correlation ids to what it logs about a
job; the lines of all services' files are merged in time order. The filter looks for the id as text first, so
that only the few lines that can match are parsed.
"""

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Fields shown in their own columns, or too noisy to repeat on every line.
SHOWN = {"timestamp", "service", "level", "event", "logger", "job_id", "tenant_id", "correlation_id"}


@dataclass(frozen=True)
class LogLine:
    source: str  # the file's name: which process (worker-2, projector) wrote it
    fields: dict[str, Any]
    raw: str

    @property
    def timestamp(self) -> str:
        return str(self.fields.get("timestamp", ""))

    def details(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.fields.items() if key not in SHOWN)


@dataclass(frozen=True)
class Wanted:
    job_id: str | None = None
    correlation_id: str | None = None

    def needles(self) -> list[str]:
        return [needle for needle in (self.job_id, self.correlation_id) if needle]

    def matches(self, fields: dict[str, Any]) -> bool:
        if self.job_id is not None and fields.get("job_id") == self.job_id:
            return True
        return self.correlation_id is not None and fields.get("correlation_id") == self.correlation_id


def log_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("*.log") if path.is_file())


def matching(lines: Iterable[str], source: str, wanted: Wanted) -> Iterator[LogLine]:
    needles = wanted.needles()
    for raw in lines:
        if not any(needle in raw for needle in needles):
            continue
        try:
            fields = json.loads(raw)
        except ValueError:
            continue  # a server's own plain-text line (Kafka's, Postgres's) that happens to name the id
        if isinstance(fields, dict) and wanted.matches(fields):
            yield LogLine(source, fields, raw.rstrip("\n"))


def read_all(folder: Path, wanted: Wanted) -> list[LogLine]:
    found: list[LogLine] = []
    for path in log_files(folder):
        with open(path, errors="replace") as lines:
            found.extend(matching(lines, path.stem, wanted))
    return sorted(found, key=lambda line: line.timestamp)


def follow(folder: Path, wanted: Wanted, poll_seconds: float = 0.5, until: float | None = None) -> Iterator[LogLine]:
    """The lines written from now on, as they come (new files included), until interrupted or ``until``
    (a ``time.monotonic()`` value)."""
    # Taken now, not at the first next(): a line written between the call and the first read must not be lost.
    positions = {path: _whole_lines_end(path) for path in log_files(folder)}
    return _follow(folder, wanted, positions, poll_seconds, until)


def _follow(
    folder: Path, wanted: Wanted, positions: dict[Path, int], poll_seconds: float, until: float | None
) -> Iterator[LogLine]:
    while until is None or time.monotonic() < until:
        for path in log_files(folder):
            start = positions.get(path, 0)
            if path.stat().st_size < start:
                start = 0  # truncated or replaced: read it again from its beginning
            with open(path, "rb") as file:
                file.seek(start)
                data = file.read()
            end = data.rfind(b"\n") + 1  # a line still being written waits for its end
            positions[path] = start + end
            lines = data[:end].decode(errors="replace").splitlines()
            yield from sorted(matching(lines, path.stem, wanted), key=lambda line: line.timestamp)
        time.sleep(poll_seconds)


def _whole_lines_end(path: Path) -> int:
    """Where the file's last whole line ends: a line half written now is read whole later."""
    with open(path, "rb") as file:
        data = file.read()
    return data.rfind(b"\n") + 1
