"""``zixly replay`` and ``zixly projections``: rebuilding the read model from the log, and looking after it."""

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from identity.audit import AuditEntry, Outcome, cli_actor, record
from kernel.database import run_with_engine
from kernel.environment import checked_settings
from kernel.logging import configure_logging
from kernel.settings import Settings
from projections.catalogue import PROJECTIONS
from projections.replay import Replay, ReplayBusy, ReplayProgress, ReplayRefused, ReplayReport

console = Console()
projections_app = typer.Typer(
    help="The read model's projections: versions, rollback, the previous tables.", no_args_is_help=True
)


class _ProgressView:
    """One bar per phase, with events/s and where each partition stands."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[int, TaskID] = {}

    def __call__(self, state: ReplayProgress) -> None:
        task = self._tasks.get(id(state))
        if task is None:
            for previous in self._tasks.values():
                self._progress.stop_task(previous)
            task = self._tasks[id(state)] = self._progress.add_task(
                state.phase, total=state.total or None, rate="", partitions=""
            )
        partitions = " ".join(f"p{p}:{state.positions.get(p, 0):,}/{t:,}" for p, t in sorted(state.targets.items()))
        self._progress.update(
            task, completed=state.done, rate=f"{state.events_per_second:,.0f} events/s", partitions=partitions
        )


def replay(
    projection: Annotated[
        list[str] | None, typer.Argument(help=f"which ({', '.join(PROJECTIONS)}); default all")
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="start over instead of resuming an interrupted replay")
    ] = False,
    no_swap: Annotated[
        bool, typer.Option("--no-swap", help="build the shadow tables and stop before the swap")
    ] = False,
    force: Annotated[bool, typer.Option(help="swap even if the rebuilt tables differ from the live ones")] = False,
) -> None:
    """Rebuild projections from the log into a shadow schema, verify them against the live tables, swap them in."""
    settings = checked_settings()
    configure_logging("replay", "WARNING", "console")
    columns = (
        TextColumn("{task.description:>16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[partitions]}", style="dim"),
    )
    try:
        with Progress(*columns, console=console) as progress:
            report = asyncio.run(
                Replay(settings, projection, progress=_ProgressView(progress)).run(
                    resume=not fresh, swap_in=not no_swap, force=force
                )
            )
    except (ReplayRefused, ReplayBusy, ValueError) as exc:
        _audit(settings, "replay", "failed", projections=projection, reason=str(exc)[:300])
        console.print(f"[red]✗[/] {exc}")
        raise typer.Exit(1) from exc
    _audit(
        settings,
        "replay",
        "ok",
        projections=list(report.projections),
        events=report.events,
        swapped=report.swapped,
        resumed=report.resumed,
    )
    print_report(report)


def _audit(settings: Settings, action: str, outcome: Outcome, **detail: object) -> None:
    entry = AuditEntry(cli_actor(), action, None, settings.job_events_topic, outcome, detail=dict(detail))
    run_with_engine(settings, lambda engine: record(engine, entry))


def print_report(report: ReplayReport) -> None:
    versions = ", ".join(
        f"{name} v{report.previous_versions.get(name, 0)}→v{v}" for name, v in report.projections.items()
    )
    console.print(
        f"{'resumed and ' if report.resumed else ''}replayed {report.events:,} events in {report.seconds:.1f} s "
        f"({report.events_per_second:,.0f} events/s): {versions}"
    )
    if report.phases:
        console.print(f"where the time went: {report.phases_text}")
    if not report.swapped:
        console.print("the shadow tables are built; run again without --no-swap to verify and swap them in")
        return
    table = Table(
        title="verification against the live tables"
        if report.comparable
        else "live and rebuilt tables (not comparable: they stood at different log positions)"
    )
    for column in ("table", "live rows", "live checksum", "rebuilt rows", "rebuilt checksum", ""):
        table.add_column(column, justify="right" if "rows" in column else "left")
    for check in report.checks:
        mark = "[green]same[/]" if check.matches else "[yellow]differs[/]"
        table.add_row(
            check.table,
            f"{check.live_rows:,}",
            check.live_checksum,
            f"{check.rebuilt_rows:,}",
            check.rebuilt_checksum,
            mark,
        )
    console.print(table)
    console.print(
        "[green]✓[/] swapped in; the previous tables are kept in zixly_previous "
        "(zixly projections rollback / drop-previous)"
    )


@projections_app.command("status")
def status() -> None:
    """Each projection's version in the code and in the database, and whether a shadow or previous version exists."""
    from projections.status import projection_status

    rows, shadow, previous = asyncio.run(projection_status(checked_settings()))
    table = Table(title="projections")
    for column in ("projection", "tables", "code version", "built by version", "built at"):
        table.add_column(column)
    for row in rows:
        stale = row.stored_version != row.projection.version
        table.add_row(
            row.projection.name,
            ", ".join(row.projection.tables),
            str(row.projection.version),
            f"[yellow]{row.stored_version}[/]" if stale else str(row.stored_version),
            row.built_at or "",
        )
    console.print(table)
    console.print(f"shadow: {shadow or 'none'}; previous: {previous or 'none'}")


@projections_app.command("rollback")
def rollback_command() -> None:
    """Bring the previous tables back (caught up from where they were swapped out)."""
    from projections.previous_version import rollback

    settings = checked_settings()
    configure_logging("replay", "WARNING", "console")
    try:
        with Progress(
            TextColumn("{task.description:>16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[partitions]}"),
            console=console,
        ) as progress:
            report = asyncio.run(rollback(settings, _ProgressView(progress)))
    except (LookupError, ReplayBusy) as exc:
        console.print(f"[red]✗[/] {exc}")
        raise typer.Exit(1) from exc
    print_report(report)


@projections_app.command("drop-previous")
def drop_previous_command() -> None:
    """Drop the tables a replay swapped out; there is no rollback after this."""
    from projections.previous_version import drop_previous

    existed = asyncio.run(drop_previous(checked_settings()))
    console.print("[green]✓[/] previous tables dropped" if existed else "there were no previous tables")


def lag(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh every second until Ctrl-C")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (as GET /api/sync-status does)")] = False,
) -> None:
    """The read model's lag per partition: log end, checkpoint, lag, last applied event time, events/s."""
    import json
    import time

    from rich.live import Live

    from read_model.projection_lag import ProjectionLag, projection_lag

    settings = checked_settings()

    def render(state: ProjectionLag) -> Table:
        fresh = state.freshness_seconds
        table = Table(
            title=f"{state.projection} on {state.topic}: lag {state.lag:,} events, "
            f"{state.events_per_second:,.0f} events/s, newest event "
            f"{'—' if fresh is None else f'{fresh:,.1f} s old'}"
        )
        for column in ("partition", "log end", "checkpoint", "lag", "last event at", "events/s"):
            table.add_column(column, justify="right")
        for p in state.partitions:
            table.add_row(
                str(p.partition),
                f"{p.end_offset:,}",
                f"{p.checkpoint:,}",
                f"[yellow]{p.lag:,}[/]" if p.lag else "0",
                p.last_event_at.isoformat(timespec="milliseconds") if p.last_event_at else "—",
                f"{p.events_per_second:,.0f}",
            )
        return table

    if as_json:
        console.print_json(json.dumps(asyncio.run(projection_lag(settings)).as_json()))
        return
    if not watch:
        console.print(render(asyncio.run(projection_lag(settings))))
        return
    with Live(console=console, refresh_per_second=2) as live:
        try:
            while True:
                live.update(render(asyncio.run(projection_lag(settings))))
                time.sleep(1)
        except KeyboardInterrupt:
            pass
