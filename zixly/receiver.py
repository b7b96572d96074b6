"""``zixly receiver``: uvicorn with one or more worker processes."""

import os
import shutil

import uvicorn

from kernel.logging import configure_logging
from kernel.settings import Settings


def run_receiver(settings: Settings, workers: int | None = None) -> None:
    configure_logging("receiver", settings.log_level, settings.log_format)
    workers = workers or settings.receiver_workers
    if workers > 1:
        # Each worker process counts on its own; prometheus-client adds them up from files in this folder.
        metrics_dir = settings.home / "run" / f"prometheus-receiver-{settings.receiver_port}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "producers.app:create_app_from_env",
        factory=True,
        host=settings.receiver_host,
        port=settings.receiver_port,
        workers=workers,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
