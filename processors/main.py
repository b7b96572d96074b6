"""``zixly worker``: the processor's one wiring point."""

from typing import Any

import faust

from kernel.listening import serve_metrics
from kernel.logging import configure_logging, get_logger
from kernel.settings import Settings
from processors.agents import register_agents
from processors.app import create_app, job_events_topic
from processors.lag import record_lag
from processors.runtime import WorkerRuntime
from processors.sweep_agents import register_sweep_agents

log = get_logger(__name__)


def build_worker_app(settings: Settings) -> tuple[faust.App, WorkerRuntime]:
    app = create_app(settings)
    runtime = WorkerRuntime(settings)
    register_agents(app, job_events_topic(app, settings), runtime, settings)
    register_sweep_agents(app, runtime, settings)

    @app.timer(interval=5.0)
    async def lag() -> None:
        await record_lag(app)

    @app.on_before_shutdown.connect
    async def close_runtime(_sender: Any, /, *_: Any, **__: Any) -> None:
        await runtime.close()

    return app, runtime


def run_worker(settings: Settings, metrics_port: int | None = None) -> None:
    configure_logging("processor", settings.log_level, settings.log_format)
    port = settings.worker_metrics_port if metrics_port is None else metrics_port
    port = serve_metrics(settings, "worker-metrics", port)
    app, _ = build_worker_app(settings)
    log.info(
        "worker starting", topic=settings.job_events_topic, metrics_port=port, concurrency=settings.worker_concurrency
    )
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False, quiet=True)
    worker.execute_from_commandline()
