"""Folding the log into the shadow tables in several processes at once, each owning a share of the partitions.

A job's events all share one partition (the job id is the record key), so partitions fold independently: every
process keeps the fold of its own partitions in memory for the whole replay and is told, step by step, how far to
go (to the log's end, then to the live projector's position, then to exactly where the swap happens). Decoding and
folding are CPU-bound Python; on the two cores of a small machine two processes nearly halve a replay.
"""

import asyncio
import contextlib
import gc
import multiprocessing
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from multiprocessing.connection import wait
from typing import Any

import psycopg

from kernel.log_reader import LogReader, Offsets
from kernel.settings import Settings
from projections.shadow_writer import ShadowWriter

PROGRESS_EVERY_SECONDS = 0.25


def _serve(
    pipe: Pipe,
    settings: Settings,
    tables: list[str],
    partitions: list[int],
    resume: dict[int, int] | None,
    segment: int,
) -> None:
    # The fold holds every job of these partitions; the cyclic collector would rescan that growing heap over and
    # over (it tripled a replay's time). What the fold allocates is freed by reference counting.
    gc.disable()
    try:
        asyncio.run(_fold(pipe, settings, tables, partitions, resume, segment))
    except BaseException:
        pipe.send(("error", traceback.format_exc()))
        raise


async def _fold(
    pipe: Pipe,
    settings: Settings,
    tables: list[str],
    partitions: list[int],
    resume: dict[int, int] | None,
    segment: int,
) -> None:
    writer = ShadowWriter(tables)
    async with (
        LogReader(settings, settings.job_events_topic) as reader,
        await psycopg.AsyncConnection.connect(settings.database, autocommit=True) as db,
    ):
        if resume is not None:
            await writer.resume(db, {p: resume[p] for p in partitions if p in resume})
        beginning = await reader.beginning_offsets()
        for partition in partitions:
            writer.offsets.setdefault(partition, beginning[partition])
        pipe.send(("ready", dict(writer.offsets)))
        while True:
            command, targets = await asyncio.to_thread(pipe.recv)
            if command == "stop":
                return
            start = {p: writer.offsets[p] for p in partitions if targets.get(p, 0) > writer.offsets[p]}
            reported = time.monotonic()
            async for records in reader.read(start, {p: targets[p] for p in start}, max_records=20_000):
                writer.apply(records)
                if writer.pending >= segment:
                    async with db.transaction():
                        await writer.flush(db)
                if time.monotonic() - reported > PROGRESS_EVERY_SECONDS:
                    pipe.send(("progress", dict(writer.offsets)))
                    reported = time.monotonic()
            async with db.transaction():
                await writer.flush(db)
            pipe.send(("done", dict(writer.offsets)))


class FoldWorkers:
    """The processes of one replay, and the positions they have reached (written to the shadow with their rows)."""

    def __init__(self, settings: Settings, tables: list[str], processes: int, segment: int) -> None:
        self._settings = settings
        self._tables = tables
        self._processes = processes
        self._segment = segment
        self._pipes: list[Pipe] = []
        self._workers: list[Any] = []
        self.offsets: Offsets = {}

    async def start(self, partitions: list[int], resume: dict[int, int] | None) -> Offsets:
        context = multiprocessing.get_context("spawn")
        count = max(1, min(self._processes, len(partitions)))
        for share in (partitions[i::count] for i in range(count)):
            ours, theirs = context.Pipe()
            worker = context.Process(
                target=_serve,
                daemon=True,
                name="zixly-replay-fold",
                args=(theirs, self._settings, self._tables, share, resume, self._segment),
            )
            worker.start()
            self._pipes.append(ours)
            self._workers.append(worker)
        await asyncio.to_thread(self._collect, "ready", None)
        return dict(self.offsets)

    async def advance(self, targets: Offsets, progress: Callable[[Offsets], None] | None = None) -> Offsets:
        """Folds every partition up to ``targets`` (never back) and returns once all of it is written."""
        for pipe in self._pipes:
            pipe.send(("advance", targets))
        await asyncio.to_thread(self._collect, "done", progress)
        return dict(self.offsets)

    def _collect(self, until: str, progress: Callable[[Offsets], None] | None) -> None:
        waiting = set(self._pipes)
        while waiting:
            for pipe in wait(list(waiting)):
                assert isinstance(pipe, Pipe)
                try:
                    kind, payload = pipe.recv()
                except EOFError:
                    raise RuntimeError("a replay process ended unexpectedly") from None
                if kind == "error":
                    raise RuntimeError(f"a replay process failed:\n{payload}")
                self.offsets.update(payload)
                if kind == until:
                    waiting.discard(pipe)
                if progress is not None:
                    progress(dict(self.offsets))

    def stop(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(BrokenPipeError, OSError):  # that process has ended already
                pipe.send(("stop", {}))
        for worker in self._workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
        self._pipes.clear()
        self._workers.clear()
