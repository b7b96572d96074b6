"""The ``zixly`` command."""

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kernel.logging import configure_logging
from kernel.settings import Settings, load_settings

app = typer.Typer(help="Zixly Pipeline: an event-sourced job pipeline on Kafka.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack alone: Kafka, Postgres, topics, migrations.", no_args_is_help=True)
db_app = typer.Typer(help="The read model's schema.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")

console = Console()


def _settings() -> Settings:
    return load_settings()


@stack_app.command("up")
def stack_up() -> None:
    """Start Kafka and Postgres (unless external), create topics, apply migrations. Idempotent."""
    from zixly.stack.local import LocalStack

    settings = _settings()
    configure_logging("stack", "WARNING", settings.log_format)
    stack = LocalStack(settings)
    with console.status("starting") as status:
        started = stack.up(lambda message: status.update(message))
    console.print(f"[green]✓[/] stack up (started now: {', '.join(started) or 'nothing, all was running'})")
    _print_status(stack)


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
    from kernel.migrate import upgrade

    upgrade(_settings(), revision)
    console.print(f"[green]✓[/] migrated to {revision}")


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
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port; 0 disables it")] = None,
) -> None:
    """Run a processor worker (Faust agents)."""
    from processors.main import run_worker

    run_worker(_settings(), metrics_port)


@app.command("projector")
def projector(
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port; 0 disables it")] = None,
) -> None:
    """Run the projector that maintains the read model."""
    from projections.main import run_projector

    run_projector(_settings(), metrics_port)


@app.command("dashboard")
def dashboard() -> None:
    """Run the dashboard (Dash)."""
    from dashboard.app import run_dashboard

    settings = _settings()
    configure_logging("dashboard", settings.log_level, settings.log_format)
    run_dashboard(settings)


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


@bench_app.command("sweep")
def bench_sweep(
    rounds: Annotated[int, typer.Option(help="rounds of the engine; the table shows medians")] = 5,
    reference_rounds: Annotated[int, typer.Option(help="rounds of vectorbt (about 20 s each)")] = 2,
    processes: Annotated[int | None, typer.Option(help="size of the engine's process pool (default: cores)")] = None,
) -> None:
    """Backtests per second on 11,781 SMA pairs x 2,500 bars, next to vectorbt on the same grid."""
    from zixly.bench.sweep import run_sweep_benchmark

    run_sweep_benchmark(console, rounds, reference_rounds, processes)


@app.command("up")
def up(
    workers: Annotated[int, typer.Option(help="processor worker processes")] = 1,
    keep_stack: Annotated[bool, typer.Option(help="leave Kafka and Postgres running on exit")] = False,
) -> None:
    """Run the whole system in the foreground: stack, receiver, workers, projector, dashboard."""
    from zixly.supervisor import Supervisor

    settings = _settings()
    configure_logging("zixly", "WARNING", settings.log_format)
    raise typer.Exit(Supervisor(settings, console, workers=workers, keep_stack=keep_stack).run())
