"""``zixly sweeps``: operators' commands on trading sweeps (re-running one to check that it reproduces)."""

import asyncio
import time
import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, text

from identity.audit import AuditEntry, cli_actor, record_sync
from kernel.database import make_engine
from kernel.environment import checked_settings
from kernel.logging import configure_logging
from kernel.publisher import append_event
from kernel.settings import Settings
from read_model.sweep_reruns import NotASweep, RerunReport, read_inputs, rerun_report, rerun_request
from schemas.job_status import TERMINAL_STATUSES, JobStatus

console = Console()
sweeps_app = typer.Typer(help="Trading sweeps: re-run one and check that it reproduces.", no_args_is_help=True)

# Exit codes a script can tell apart.
REPRODUCED, NOT_REPRODUCED, INPUTS_CHANGED, DID_NOT_COMPLETE = 0, 1, 2, 3


@sweeps_app.command("rerun")
def rerun(
    job_id: Annotated[str, typer.Argument(help="the completed sweep to run again")],
    timeout: Annotated[float, typer.Option(help="seconds to wait for the re-run to complete")] = 3600.0,
) -> None:
    """Submit the same sweep again, wait for it, and compare: identical inputs must give a bit-identical result table;
    changed inputs (prices, engine, settings) are named. Exit 0 reproduced, 1 not reproduced, 2 inputs changed,
    3 the re-run did not complete."""
    try:
        original_id = uuid.UUID(job_id)
    except ValueError as exc:
        raise typer.BadParameter(f"not a job id: {job_id!r}", param_hint="JOB_ID") from exc
    settings = checked_settings()
    configure_logging("cli", "WARNING", "console")
    engine = make_engine(settings, pool_size=1)
    try:
        raise typer.Exit(_rerun(settings, engine, original_id, timeout))
    finally:
        engine.dispose()


def _rerun(settings: Settings, engine: Engine, original_id: uuid.UUID, timeout: float) -> int:
    try:
        with engine.connect() as connection:
            original = read_inputs(connection, original_id)
    except NotASweep as exc:
        console.print(f"[red]✗[/] {exc}")
        return DID_NOT_COMPLETE
    if original.status != JobStatus.COMPLETED:
        console.print(
            f"[red]✗[/] sweep {original_id} is {original.status}; only a completed sweep has results to match"
        )
        return DID_NOT_COMPLETE
    request = rerun_request(original, uuid.uuid4().hex)
    asyncio.run(append_event(settings, request))
    record_sync(
        engine,
        AuditEntry(
            cli_actor(), "sweep.rerun", original.tenant_id, str(original_id), detail={"new_job_id": str(request.job_id)}
        ),
    )
    console.print(f"re-running sweep {original_id} as job {request.job_id} (tenant {original.tenant_id})")
    status = _wait(engine, request.job_id, timeout)
    if status != JobStatus.COMPLETED:
        console.print(f"[red]✗[/] the re-run {request.job_id} ended {status}, not COMPLETED")
        return DID_NOT_COMPLETE
    with engine.connect() as connection:
        return _report(rerun_report(connection, original_id, request.job_id))


def _report(report: RerunReport) -> int:
    if report.changes:
        console.print(f"[yellow]![/] {report.verdict}")
        return INPUTS_CHANGED
    if report.results.identical:
        console.print(f"[green]✓[/] {report.verdict}")
        return REPRODUCED
    console.print(f"[red]✗[/] {report.verdict}:")
    for example in report.results.examples:
        console.print(f"  - {example}")
    return NOT_REPRODUCED


def _wait(engine: Engine, job_id: uuid.UUID, timeout: float) -> str:
    """The job's status once terminal (or whatever it is at the deadline), with its progress on screen."""
    deadline = time.monotonic() + timeout
    status = "not projected yet"
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn()
    ) as progress:
        task = progress.add_task("re-run", total=1.0, status=status)
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                row = connection.execute(
                    text("SELECT status, progress, progress_message FROM pipeline_jobs WHERE id = :id"),
                    {"id": job_id},
                ).first()
            if row is not None:
                status = str(row.status)
                progress.update(task, completed=row.progress, status=f"{status} {row.progress_message or ''}")
                if JobStatus(status) in TERMINAL_STATUSES:
                    return status
            time.sleep(0.5)
    return status
