"""``zixly events``: reading the job log itself (tail, one job's history, export) and filling it for benchmarks."""

import asyncio
import contextlib
import json
import sys
import uuid
from datetime import datetime
from typing import Annotated

import typer
from aiokafka.partitioner import DefaultPartitioner
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kernel.environment import checked_settings
from kernel.log_reader import LogReader, LogRecord
from read_model.job_state import JobRow
from read_model.time_travel import AsOf, fold_job, parse_as_of
from schemas.codec import TENANT_HEADER, UndecodableEvent, decode, event_type_of, header
from schemas.events import Event

console = Console()
events_app = typer.Typer(
    help="The job log itself: follow it, read one job's history, export a tenant's events.", no_args_is_help=True
)


def _wanted(record: LogRecord, tenant: str | None, job: str | None, types: list[str] | None) -> bool:
    headers = record.headers
    if tenant is not None and header(headers, TENANT_HEADER) != tenant:
        return False
    if job is not None and (record.key or b"").decode(errors="replace") != job:
        return False
    return not types or event_type_of(headers) in types


@events_app.command("tail")
def tail(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's events")] = None,
    job: Annotated[str | None, typer.Option(help="only this job's events")] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type", help="only these event types")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False,
    from_start: Annotated[bool, typer.Option("--from-start", help="from the start of the log, not its end")] = False,
    last: Annotated[int, typer.Option(help="without --from-start: this many recent events per partition")] = 10,
) -> None:
    """Print events as one line each; filters read headers and keys, so skipped events are never decoded."""

    async def run() -> None:
        settings = checked_settings()
        async with LogReader(settings, settings.job_events_topic) as reader:
            ends = await reader.end_offsets()
            starts = await reader.beginning_offsets()
            if not from_start:
                starts = {p: max(starts[p], ends[p] - last) for p in ends}
            async for batch in reader.read(starts, None if follow else ends):
                for record in batch:
                    if _wanted(record, tenant, job, event_type):
                        _print_line(record)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a follow ends
        asyncio.run(run())


def _print_line(record: LogRecord) -> None:
    try:
        event = decode(record.value)
    except UndecodableEvent as exc:
        console.print(f"[red]p{record.partition}@{record.offset} undecodable:[/] {exc}", highlight=False)
        return
    console.print(
        f"[dim]{event.occurred_at:%Y-%m-%d %H:%M:%S.%f}[/] p{record.partition}@{record.offset} "
        f"[bold]{event.event_type}[/] v{event.schema_version} {event.tenant_id} {event.job_id} "
        f"[dim]{_summary(event)}[/]",
        highlight=False,
        soft_wrap=True,  # one line per event, for grep
    )


def _summary(event: Event) -> str:
    payload = event.payload.model_dump(mode="json", exclude={"rows", "result", "parameters", "history", "data"})
    return " ".join(f"{k}={v}" for k, v in payload.items() if v not in (None, "", [], {}))[:160]


def job_partition(job_id: str, partitions: list[int]) -> int:
    """The partition the producers' default partitioner puts this job's key in."""
    chosen: int = DefaultPartitioner()(job_id.encode(), partitions, partitions)
    return chosen


@events_app.command("job")
def job_history(
    job_id: Annotated[str, typer.Argument(help="the job's id")],
    as_of: Annotated[
        str | None, typer.Option(help="the job's state at this offset (a number) or time (ISO 8601)")
    ] = None,
) -> None:
    """A job's full history from the log, and its state folded from it (now, or as of an offset or a time)."""
    try:
        uuid.UUID(job_id)
        moment = parse_as_of(as_of)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def run() -> list[tuple[Event, int, int]]:
        settings = checked_settings()
        async with LogReader(settings, settings.job_events_topic) as reader:
            partitions = await reader.partitions()
            starts, ends = await reader.beginning_offsets(), await reader.end_offsets()
            likely = job_partition(job_id, partitions)
            # Our producers key by job id, so the history is in that key's partition; a producer that chose its
            # own partitions may have put it elsewhere, so the rest of the log is searched when it is not there.
            for chosen in ([likely], [p for p in partitions if p != likely]):
                history = []
                async for batch in reader.read({p: starts[p] for p in chosen}, {p: ends[p] for p in chosen}):
                    history += [(decode(r.value), r.partition, r.offset) for r in batch if r.key == job_id.encode()]
                if history:
                    return history
            return []

    history = asyncio.run(run())
    if not history:
        console.print(f"[red]✗[/] job {job_id} is not in the log")
        raise typer.Exit(1)
    table = Table(title=f"job {job_id}: {len(history)} events")
    for column in ("offset", "occurred at", "event", "v", "producer", "details"):
        table.add_column(column)
    for event, partition, offset in history:
        in_view = moment.includes(event, offset)
        style = None if in_view else "dim"
        table.add_row(
            f"{partition}@{offset}",
            f"{event.occurred_at:%Y-%m-%d %H:%M:%S.%f}",
            event.event_type,
            str(event.schema_version),
            event.producer,
            _summary(event),
            style=style,
        )
    console.print(table)
    _print_state(fold_job(history, moment), moment)


def _print_state(row: JobRow | None, moment: AsOf) -> None:
    if row is None:
        console.print(f"the job did not exist yet {moment}")
        return
    state = Table(title=f"state {moment}", show_header=False)
    for name in (
        "status",
        "job_type",
        "tenant_id",
        "attempts",
        "progress",
        "progress_message",
        "error_type",
        "error_message",
        "created_at",
        "started_at",
        "completed_at",
        "event_count",
    ):
        state.add_row(name, str(getattr(row, name)))
    console.print(state)


@events_app.command("export")
def export(
    tenant: Annotated[str, typer.Option(help="the tenant whose events to export")],
    since: Annotated[str | None, typer.Option(help="only events at or after this time (ISO 8601)")] = None,
) -> None:
    """A tenant's events as JSON lines on stdout (upcast to their current versions), in log order per partition."""

    async def run() -> int:
        settings = checked_settings()
        count = 0
        async with LogReader(settings, settings.job_events_topic) as reader:
            ends = await reader.end_offsets()
            starts = await reader.beginning_offsets()
            if since is not None:
                starts = await reader.offsets_for_time(datetime.fromisoformat(since))
            async for batch in reader.read(starts, ends):
                for record in batch:
                    if header(record.headers, TENANT_HEADER) == tenant:
                        event = decode(record.value)
                        sys.stdout.write(
                            json.dumps(
                                {
                                    "partition": record.partition,
                                    "offset": record.offset,
                                    **event.model_dump(mode="json"),
                                }
                            )
                            + "\n"
                        )
                        count += 1
        return count

    count = asyncio.run(run())
    Console(stderr=True).print(f"[green]✓[/] {count:,} events of {tenant}")


@events_app.command("generate")
def generate(
    count: Annotated[int, typer.Argument(help="about how many events (whole job histories)")],
    seed: Annotated[int | None, typer.Option(help="the same seed appends the same histories")] = None,
) -> None:
    """Append synthetic job histories (a realistic mix of job types and outcomes) to the log, for replays at scale."""
    from zixly.synthetic_events import append_synthetic

    settings = checked_settings()
    with Progress(
        TextColumn("appending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        task = progress.add_task("appending", total=count)
        appended = asyncio.run(append_synthetic(settings, count, seed, lambda n: progress.update(task, completed=n)))
    console.print(f"[green]✓[/] appended {appended:,} events to {settings.job_events_topic}")
