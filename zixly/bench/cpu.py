"""Where a measurement's CPU went: each group of processes' CPU time over the wall time, in cores.

On a machine of two cores the broker, Postgres, the load generator and the server under test share them; a ratio
read without these shares can blame the server for a core the broker took.
"""

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil

Matcher = Callable[[psutil.Process], bool]


def descendants_of(root_pid: int) -> Matcher:
    """The process's descendants without it (a worker's process pool)."""

    def matches(process: psutil.Process) -> bool:
        try:
            return any(parent.pid == root_pid for parent in process.parents())
        except psutil.Error:
            return False

    return matches


def tree_of(root_pid: int) -> Matcher:
    """The process and its descendants (a uvicorn supervisor and its workers)."""
    descendant = descendants_of(root_pid)
    return lambda process: process.pid == root_pid or descendant(process)


def named(*names: str) -> Matcher:
    def matches(process: psutil.Process) -> bool:
        try:
            return process.name() in names
        except psutil.Error:
            return False

    return matches


def command_contains(text: str) -> Matcher:
    def matches(process: psutil.Process) -> bool:
        try:
            return text in " ".join(process.cmdline())
        except psutil.Error:
            return False

    return matches


def _reaped_children() -> float:
    times = os.times()
    return times.children_user + times.children_system


@dataclass
class CpuShares:
    cores: dict[str, float] = field(default_factory=dict)
    """CPU seconds per wall second for each group: 1.0 is one core busy all the time."""


LOAD_GENERATOR = "load generator"


class CpuMeter:
    """``groups`` name the processes to watch; the load generator (a child that has exited by the end of the
    measurement, like wrk) is counted from this process's reaped children."""

    def __init__(self, groups: Mapping[str, Matcher]) -> None:
        self._groups = groups

    def _times(self) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}
        for process in psutil.process_iter():
            for name, matches in self._groups.items():
                if matches(process):
                    try:
                        times = process.cpu_times()
                    except psutil.Error:
                        break
                    found[process.pid] = (name, times.user + times.system)
                    break
        return found

    @contextmanager
    def measure(self) -> Iterator[CpuShares]:
        shares = CpuShares()
        before, started, reaped = self._times(), time.perf_counter(), _reaped_children()
        yield shares
        after, wall = self._times(), time.perf_counter() - started
        used: dict[str, float] = dict.fromkeys(self._groups, 0.0)
        for pid, (name, seconds) in after.items():
            used[name] += seconds - before.get(pid, (name, 0.0))[1]
        used[LOAD_GENERATOR] = _reaped_children() - reaped
        shares.cores.update({name: seconds / wall for name, seconds in used.items()})
