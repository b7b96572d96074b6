"""``zixly logs``: follow one job, or one correlation, through every service's JSON log."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from kernel.environment import checked_settings
from zixly.job_logs import LogLine, Wanted, follow, read_all

console = Console(highlight=False)
LEVEL_COLOURS = {"debug": "dim", "info": "", "warning": "yellow", "error": "red", "critical": "bold red"}


def logs(
    job: Annotated[str | None, typer.Option("--job", help="a job id: its lines from every service")] = None,
    correlation: Annotated[
        str | None, typer.Option("--correlation", help="a correlation id: the lines of every job it names")
    ] = None,
    folder: Annotated[
        Path | None, typer.Option("--dir", help="the logs' folder (default: the local stack's, <home>/logs)")
    ] = None,
    follow_new: Annotated[bool, typer.Option("--follow", "-f", help="then keep printing new lines")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the lines as logged, for jq")] = False,
) -> None:
    """One job's path through receiver, workers, projector and notifier, in time order."""
    if job is None and correlation is None:
        raise typer.BadParameter("give --job ID or --correlation ID", param_hint="--job")
    wanted = Wanted(job_id=job, correlation_id=correlation)
    folder = folder or checked_settings().home / "logs"
    if not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder of logs", param_hint="--dir")
    found = read_all(folder, wanted)
    for line in found:
        _print(line, as_json)
    if not found and not follow_new:
        console.print(f"no line in {folder}/*.log names {job or correlation}", style="yellow")
        raise typer.Exit(1)
    if follow_new:
        try:
            for line in follow(folder, wanted):
                _print(line, as_json)
        except KeyboardInterrupt:
            pass


def _print(line: LogLine, as_json: bool) -> None:
    if as_json:
        console.print(line.raw, markup=False, soft_wrap=True)
        return
    fields = line.fields
    level = str(fields.get("level", ""))
    colour = LEVEL_COLOURS.get(level, "")
    text = (
        f"{escape(line.timestamp)}  [cyan]{escape(line.source):<12}[/]  "
        f"{f'[{colour}]' if colour else ''}{escape(str(fields.get('event', '')))}{f'[/{colour}]' if colour else ''}"
    )
    if details := line.details():
        text += f"  [dim]{escape(details)}[/]"
    console.print(text, soft_wrap=True)
