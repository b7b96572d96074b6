"""The ``zixly`` command."""

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from identity.audit import AuditEntry, cli_actor, record
from kernel import dead_letters as dlq
from kernel.database import run_with_engine
from kernel.environment import checked_settings
from kernel.logging import configure_logging
from kernel.settings import Settings
from zixly import access_cli, events_cli, logs_cli, projections_cli, sweeps_cli

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from zixly.dead_letter_desk import DeadLetter

app = typer.Typer(help="Zixly Pipeline: an event-sourced job pipeline on Kafka.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack alone: Kafka, Postgres, topics, migrations.", no_args_is_help=True)
db_app = typer.Typer(help="The read model's schema.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")
app.command("replay")(projections_cli.replay)
app.command("lag")(projections_cli.lag)
app.command("logs")(logs_cli.logs)
app.add_typer(projections_cli.projections_app, name="projections")
app.add_typer(events_cli.events_app, name="events")
app.add_typer(access_cli.tenants_app, name="tenants")
app.add_typer(access_cli.tokens_app, name="tokens")
app.add_typer(access_cli.users_app, name="users")
app.add_typer(access_cli.keys_app, name="keys")
app.add_typer(access_cli.audit_app, name="audit")
app.add_typer(sweeps_cli.sweeps_app, name="sweeps")

console = Console()
errors = Console(stderr=True, highlight=False)
# These run the local stack on loopback: unless ZIXLY_ENV says otherwise, in development mode.
LOCAL_STACK_COMMANDS = {"up", "stack", "bench"}


@app.callback()
def main(context: typer.Context) -> None:
    if context.invoked_subcommand in LOCAL_STACK_COMMANDS:
        os.environ.setdefault("ZIXLY_ENV", "development")


def _settings() -> Settings:
    return checked_settings()


@contextmanager
def _one_line_errors(command: str) -> Iterator[None]:
    """A condition the operator can fix is one line with its remedy, not a traceback (exit status 1)."""
    from zixly.stack.errors import StackError

    try:
        yield
    except StackError as error:
        errors.print(f"[red]{command}:[/] {error}", soft_wrap=True)
        raise typer.Exit(1) from None


BROKERS_HELP = "Kafka nodes of the local stack: 3 is a replicated cluster (ZIXLY_KAFKA_BROKERS)"


@stack_app.command("up")
def stack_up(brokers: Annotated[int | None, typer.Option("--brokers", help=BROKERS_HELP)] = None) -> None:
    """Start Kafka and Postgres (unless external), create topics, apply migrations. Idempotent."""
    from zixly.stack.local import LocalStack

    if brokers is not None:
        os.environ["ZIXLY_KAFKA_BROKERS"] = str(brokers)
    settings = _settings()
    configure_logging("stack", "WARNING", settings.log_format)
    stack = LocalStack(settings)
    with _one_line_errors("zixly stack up"), console.status("starting") as status:
        started = stack.up(lambda message: status.update(message), notice=_notice)
    console.print(f"[green]✓[/] stack up (started now: {', '.join(started) or 'nothing, all was running'})")
    _print_status(stack)


def _notice(message: str) -> None:
    console.print(f"[yellow]![/] {message}")


@stack_app.command("down")
def stack_down() -> None:
    """Stop the Kafka broker and Postgres cluster that the stack runs."""
    from zixly.stack.local import LocalStack

    stack = LocalStack(_settings())
    with console.status("stopping") as status:
        stopped = stack.down(lambda message: status.update(message))
    console.print(f"[green]✓[/] stopped: {', '.join(stopped) or 'nothing was running'}")


@stack_app.command("status")
def stack_status() -> None:
    """What runs where."""
    from zixly.stack.local import LocalStack

    _print_status(LocalStack(_settings()))


def _print_status(stack: "object") -> None:
    from zixly.stack.local import LocalStack

    assert isinstance(stack, LocalStack)
    table = Table("component", "state", "address", "detail")
    colours = {"running": "green", "stopped": "red", "external": "cyan"}
    for row in stack.status():
        table.add_row(row.name, f"[{colours[row.state]}]{row.state}[/]", row.address, row.detail)
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the read model's migrations."""
    from read_model.migrate import upgrade

    upgrade(_settings(), revision)
    console.print(f"[green]✓[/] migrated to {revision}")


@db_app.command("logins")
def db_logins() -> None:
    """Let the receiver's, the dashboard's and the workers' roles log in with the passwords of their URLs."""
    from read_model.migrate import provision_service_logins

    roles = provision_service_logins(_settings())
    console.print(f"[green]✓[/] logins set for {', '.join(roles) or 'no role (their URLs name other users)'}")


@app.command("topics")
def topics() -> None:
    """Create the project's topics (idempotent) and check their partition counts."""
    from kernel.kafka import ensure_topics
    from kernel.topics import project_topics

    settings = _settings()
    created = asyncio.run(ensure_topics(settings, project_topics(settings)))
    console.print(f"[green]✓[/] topics ready (created: {', '.join(created) or 'none'})")


@app.command("receiver")
def receiver(workers: Annotated[int | None, typer.Option(help="uvicorn worker processes")] = None) -> None:
    """Run the webhook receiver (FastAPI)."""
    from zixly.receiver import run_receiver

    run_receiver(_settings(), workers)


@app.command("worker")
def worker(
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus port; 0: any free one, reported in the log")
    ] = None,
) -> None:
    """Run a processor worker (Faust agents)."""
    from processors.main import run_worker

    run_worker(_settings(), metrics_port)


@app.command("projector")
def projector(
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus port; 0: any free one, reported in the log")
    ] = None,
) -> None:
    """Run the projector that maintains the read model."""
    from projections.main import run_projector

    run_projector(_settings(), metrics_port)


@app.command("dashboard")
def dashboard(
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus port; 0: any free one, reported in the log")
    ] = None,
) -> None:
    """Run the dashboard (Dash)."""
    from dashboard.server import run_dashboard

    settings = _settings()
    configure_logging("dashboard", settings.log_level, settings.log_format)
    run_dashboard(settings, metrics_port)


bench_app = typer.Typer(help="Benchmarks, each against a baseline measured in the same run.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("ingest")
def bench_ingest(
    seconds: Annotated[int, typer.Option(help="length of each measurement")] = 10,
    rounds: Annotated[int, typer.Option(help="interleaved rounds; the table shows medians")] = 3,
    workers: Annotated[int, typer.Option(help="uvicorn workers for both servers")] = 2,
) -> None:
    """Webhook ingest (accepted/s, p50/p99) next to a bare FastAPI endpoint and a raw aiokafka producer."""
    from zixly.bench.ingest import run_ingest_benchmark

    settings = _settings()
    configure_logging("bench", "WARNING", settings.log_format)
    run_ingest_benchmark(settings, console, seconds, rounds, workers)


@bench_app.command("latency")
def bench_latency(
    rates: Annotated[str, typer.Option(help="requests per second, comma-separated")] = "100,500,1000",
    seconds: Annotated[float, typer.Option(help="how long each rate is held")] = 10.0,
) -> None:
    """Webhook 202 → row projected → job completed (p50/p95/p99) at fixed rates, next to the log's own round trip."""
    from zixly.bench.latency import run_latency_benchmark

    chosen = _rates(rates, seconds)
    settings = _settings()
    configure_logging("bench", "WARNING", settings.log_format)
    run_latency_benchmark(settings, console, chosen, seconds)


@bench_app.command("pipeline")
def bench_pipeline(
    rates: Annotated[str, typer.Option(help="jobs per second, rising, comma-separated")] = "250,500,750,1000,1250,1500",
    seconds: Annotated[float, typer.Option(help="how long each rate is held")] = 8.0,
    workers: Annotated[int, typer.Option(min=1, help="worker processes in the group")] = 1,
) -> None:
    """The noop jobs/s the whole running system sustains (backlog flat), with each process's CPU."""
    from zixly.bench.pipeline import run_pipeline_benchmark

    chosen = _rates(rates, seconds)
    settings = _settings()
    configure_logging("bench", "WARNING", settings.log_format)
    run_pipeline_benchmark(settings, console, chosen, seconds, workers)


def _rates(rates: str, seconds: float) -> list[int]:
    try:
        chosen = [int(rate) for rate in rates.split(",")]
    except ValueError:
        raise typer.BadParameter(f"--rates takes whole numbers separated by commas, not {rates!r}") from None
    if any(rate <= 0 for rate in chosen) or seconds <= 0:
        raise typer.BadParameter("--rates and --seconds must be above 0")
    return chosen


@bench_app.command("sweep")
def bench_sweep(
    rounds: Annotated[int, typer.Option(help="rounds of the engine; the table shows medians")] = 5,
    reference_rounds: Annotated[int, typer.Option(help="rounds of vectorbt (about 20 s each)")] = 2,
    processes: Annotated[int | None, typer.Option(help="size of the engine's process pool (default: cores)")] = None,
) -> None:
    """Backtests per second on 11,781 SMA pairs x 2,500 bars, next to vectorbt on the same grid."""
    from zixly.bench.sweep import run_sweep_benchmark

    run_sweep_benchmark(console, rounds, reference_rounds, processes)


@bench_app.command("walk-forward")
def bench_walk_forward(
    rounds: Annotated[int, typer.Option(help="interleaved rounds; the table shows medians")] = 5,
    windows: Annotated[int, typer.Option(help="SMA windows from 2: the grid is every fast/slow pair of them")] = 100,
) -> None:
    """A walk-forward of 5 folds over ten years of bars against ranking the same grid once on one fold."""
    from zixly.bench.walk_forward import run_walk_forward_benchmark

    if rounds < 1 or windows < 2:
        raise typer.BadParameter("--rounds must be at least 1 and --windows at least 2")
    run_walk_forward_benchmark(console, rounds, windows)


@bench_app.command("worker")
def bench_worker(
    jobs: Annotated[int, typer.Option(help="noop jobs per round")] = 20_000,
    rounds: Annotated[int, typer.Option(help="interleaved rounds; the table shows medians")] = 3,
    concurrency: Annotated[int, typer.Option(help="the worker's slots")] = 16,
    code: Annotated[
        list[Path] | None, typer.Option(help="also run the worker of this checkout (same virtualenv), to compare")
    ] = None,
) -> None:
    """Short jobs through one worker (jobs/s on the log's timestamps) next to a raw aiokafka relay."""
    from zixly.bench.worker import run_worker_benchmark

    settings = _settings()
    configure_logging("bench", "WARNING", settings.log_format)
    run_worker_benchmark(settings, console, jobs, rounds, concurrency, [p.resolve() for p in code or []])


@bench_app.command("scale")
def bench_scale(
    jobs: Annotated[int, typer.Option(help="jobs per round and kind")] = 5_000,
    rounds: Annotated[int, typer.Option(help="interleaved rounds; the table shows medians")] = 3,
    workers: Annotated[str, typer.Option(help="worker counts to compare, comma-separated")] = "1,2,4",
    concurrency: Annotated[int, typer.Option(help="each worker's slots")] = 16,
    kinds: Annotated[str, typer.Option(help="what runs: noop, sleep 0.05 s, sweep (comma-separated)")] = "",
) -> None:
    """Jobs/s of noop and 0.05 s jobs, and backtests/s of one large sweep, with 1, 2 and 4 workers in one group."""
    from zixly.bench.scale import KINDS, run_scale_benchmark

    chosen = [kind.strip() for kind in kinds.split(",") if kind.strip()] or list(KINDS)
    if unknown := set(chosen) - set(KINDS):
        raise typer.BadParameter(
            f"unknown: {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}", param_hint="--kinds"
        )

    counts = sorted({int(n) for n in workers.split(",") if n.strip()})
    if not counts or counts[0] < 1:
        raise typer.BadParameter("give worker counts of 1 or more, e.g. 1,2,4", param_hint="--workers")
    settings = _settings()
    configure_logging("bench", "WARNING", settings.log_format)
    run_scale_benchmark(settings, console, jobs, rounds, counts, concurrency, chosen)


@app.command("notifier")
def notifier(
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus port; 0: any free one, reported in the log")
    ] = None,
) -> None:
    """Run the notifier (Slack and e-mail about finished jobs)."""
    from notifier.main import run_notifier

    run_notifier(_settings(), metrics_port)


dead_letters_app = typer.Typer(
    help="Records that could not be processed: list them, send chosen ones back.", no_args_is_help=True
)
app.add_typer(dead_letters_app, name="dead-letters")


@dead_letters_app.command("list")
def dead_letters_list(
    job_id: Annotated[list[str] | None, typer.Option(help="only these jobs")] = None,
    error_type: Annotated[str | None, typer.Option(help="only this error type")] = None,
) -> None:
    """The dead-letter topic as a table: where each record came from, and why it failed."""
    from zixly.dead_letter_desk import read_dead_letters

    letters = _choose(asyncio.run(read_dead_letters(_settings())), job_id, error_type)
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("offset", "job", "from", "stage", "error type", "error", "failed at"):
        table.add_column(column)
    for letter in letters:
        request = letter.request
        table.add_row(
            str(letter.offset),
            str(request.job_id) if request else (letter.key or b"").decode(errors="replace"),
            _origin(letter),
            letter.header(dlq.STAGE),
            letter.header(dlq.ERROR_TYPE),
            letter.header(dlq.ERROR)[:80],
            letter.header(dlq.FAILED_AT),
        )
    console.print(table)


@dead_letters_app.command("resubmit")
def dead_letters_resubmit(
    reason: Annotated[str, typer.Option(help="why; recorded in the log")],
    job_id: Annotated[list[str] | None, typer.Option(help="these jobs")] = None,
    error_type: Annotated[str | None, typer.Option(help="every dead letter with this error type")] = None,
    all_letters: Annotated[bool, typer.Option("--all", help="every dead letter")] = False,
    dry_run: Annotated[bool, typer.Option(help="say what would be sent, send nothing")] = False,
) -> None:
    """Send chosen dead letters back: a dead-lettered job runs again as a new job, audited in the log."""
    from zixly.dead_letter_desk import read_dead_letters, resubmit

    if not (job_id or error_type or all_letters):
        raise typer.BadParameter("choose with --job-id, --error-type or --all")
    settings = _settings()
    letters = _choose(asyncio.run(read_dead_letters(settings)), job_id, error_type)
    console.print(f"{len(letters)} dead letter(s) chosen")
    if dry_run or not letters:
        return
    done = asyncio.run(resubmit(settings, letters, reason, progress=console.print))

    async def audit(engine: AsyncEngine) -> None:
        for item in done:
            request = item.letter.request
            await record(
                engine,
                AuditEntry(
                    cli_actor(),
                    "job.resubmit",
                    request.tenant_id if request else None,
                    str(request.job_id) if request else f"dead letter {item.letter.offset}",
                    detail={"new_job_id": str(item.new_job_id) if item.new_job_id else None, "reason": reason},
                ),
            )

    run_with_engine(settings, audit)
    console.print(f"[green]✓[/] {len(done)} resubmitted")


def _origin(letter: "DeadLetter") -> str:
    if letter.header(dlq.ORIGINAL_PARTITION) in ("", "-1"):
        return "its job's attempts"
    topic, partition, offset = (
        letter.header(h) for h in (dlq.ORIGINAL_TOPIC, dlq.ORIGINAL_PARTITION, dlq.ORIGINAL_OFFSET)
    )
    return f"{topic}[{partition}]@{offset}"


def _choose(letters: list["DeadLetter"], job_ids: list[str] | None, error_type: str | None) -> list["DeadLetter"]:
    chosen = letters
    if job_ids:
        wanted = set(job_ids)
        chosen = [letter for letter in chosen if letter.request and str(letter.request.job_id) in wanted]
    if error_type:
        chosen = [letter for letter in chosen if letter.header(dlq.ERROR_TYPE) == error_type]
    return chosen


@app.command("up")
def up(
    workers: Annotated[int, typer.Option(help="processor worker processes")] = 1,
    projectors: Annotated[
        int, typer.Option(help="projector processes, sharing the partitions (each resumes from its checkpoints)")
    ] = 1,
    brokers: Annotated[int | None, typer.Option("--brokers", help=BROKERS_HELP)] = None,
    keep_stack: Annotated[bool, typer.Option(help="leave Kafka and Postgres running on exit")] = False,
    production: Annotated[
        bool, typer.Option("--production", help="behave as production: real secrets, signed tenants only")
    ] = False,
) -> None:
    """Run the whole system in the foreground: stack, receiver, workers, projector, dashboard.

    Development mode unless --production or ZIXLY_ENV=production: loopback only, unsigned unregistered tenants
    accepted, development secrets."""
    from zixly.supervisor import Supervisor

    if production:
        os.environ["ZIXLY_ENV"] = "production"
    if brokers is not None:
        os.environ["ZIXLY_KAFKA_BROKERS"] = str(brokers)
    settings = _settings()
    configure_logging("zixly", "WARNING", settings.log_format)
    with _one_line_errors("zixly up"):
        code = Supervisor(settings, console, workers=workers, keep_stack=keep_stack, projectors=projectors).run()
    raise typer.Exit(code)


@bench_app.command("replay")
def bench_replay(
    events: Annotated[
        int, typer.Option(help="events in the log (generated once per size and seed, then reused)")
    ] = 1_000_000,
    rounds: Annotated[int, typer.Option(help="rounds; the table shows medians")] = 3,
    seed: Annotated[int, typer.Option(help="seed of the synthetic job histories")] = 7,
    processes: Annotated[int | None, typer.Option(help="folding processes (default: ZIXLY_REPLAY_PROCESSES)")] = None,
) -> None:
    """Replaying N events into a fresh read model, next to a raw COPY of the same rows."""
    from zixly.bench.replay import run_replay_benchmark

    settings = _settings()
    configure_logging("bench", "WARNING", settings.log_format)
    run_replay_benchmark(settings, console, events, rounds, seed, processes)


@bench_app.command("sweep-e2e")
def bench_sweep_e2e(
    fast: Annotated[int, typer.Option(help="fast SMA windows (2, 3, …) per ticker; 4 tickers")] = 200,
    slow: Annotated[int, typer.Option(help="slow SMA windows (210, 211, …) per ticker")] = 1_250,
) -> None:
    """One sweep of a million backtests, webhook to COMPLETED, with where the time went, next to the engine alone."""
    from zixly.bench.sweep_e2e import run_sweep_e2e_benchmark

    settings = _settings()
    configure_logging("bench", "WARNING", settings.log_format)
    run_sweep_e2e_benchmark(settings, console, fast, slow)


@bench_app.command("big-job")
def bench_big_job(
    fast: Annotated[int, typer.Option(help="fast SMA windows per ticker (4 tickers)")] = 200,
    slow: Annotated[int, typer.Option(help="slow SMA windows per ticker")] = 1_250,
    rounds: Annotated[int, typer.Option(help="page loads per page")] = 10,
) -> None:
    """One big sweep's job page and explorer in Chromium (a million backtests, 2,000+ events) next to a small one's."""
    from zixly.bench.big_job import run_big_job_benchmark

    settings = _settings()
    configure_logging("bench", "WARNING", settings.log_format)
    run_big_job_benchmark(settings, console, fast, slow, rounds)


@bench_app.command("job-list")
def bench_job_list(
    jobs: Annotated[int, typer.Option(help="jobs seeded (once per size, then reused)")] = 1_000_000,
    rounds: Annotated[int, typer.Option(help="requests per scenario")] = 30,
) -> None:
    """The read-only API's job list over a million jobs: p50/p95 per filter, plans, an OFFSET baseline."""
    from zixly.bench.job_list import run_job_list_benchmark

    settings = _settings()
    configure_logging("bench", "WARNING", settings.log_format)
    run_job_list_benchmark(settings, console, jobs, rounds)
