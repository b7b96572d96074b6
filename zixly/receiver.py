"""``zixly receiver``: uvicorn with one or more worker processes."""

import os
import shutil
import tempfile

from kernel.listening import run_uvicorn
from kernel.logging import configure_logging
from kernel.settings import Settings


def run_receiver(settings: Settings, workers: int | None = None) -> None:
    configure_logging("receiver", settings.log_level, settings.log_format)
    workers = workers or settings.receiver_workers
    metrics_dir = None
    if workers > 1:
        # Each worker process counts on its own; prometheus-client adds them up from files in this folder, one per
        # receiver (two on port 0 would otherwise share, and clear, each other's).
        (settings.home / "run").mkdir(parents=True, exist_ok=True)
        metrics_dir = tempfile.mkdtemp(prefix="prometheus-receiver-", dir=settings.home / "run")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        run_uvicorn(
            settings,
            "receiver",
            "producers.app:create_app_from_env",
            "receiver_port",
            settings.receiver_host,
            factory=True,
            workers=workers,
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=10,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
