"""JSON Schema files for integrators, generated from the models and committed under ``schemas/json``.

``python -m schemas.json_schema`` rewrites them; a test fails when the committed files are stale.
"""

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.events import EVENT_TYPES
from schemas.jobs import JOB_PARAMETERS
from schemas.superseded import SUPERSEDED_EVENT_TYPES
from schemas.sweeps import SweepChunk, TradingSweepWebhook
from schemas.webhooks import ErrorResponse, GenericJobWebhook, JobAccepted

SCHEMA_DIR = Path(__file__).parent / "json"


def _slug(job_type: str) -> str:
    return job_type.replace(".", "-")


def generated_schemas() -> dict[str, str]:
    """File name → file content of every schema the project publishes."""
    models: dict[str, type[BaseModel]] = {
        f"events/{event.TYPE}.v{event.VERSION}.json": event for event in (*EVENT_TYPES, *SUPERSEDED_EVENT_TYPES)
    }
    models |= {
        "webhooks/generic-job.json": GenericJobWebhook,
        "webhooks/trading-sweep.json": TradingSweepWebhook,
        "work/sweep-chunk.json": SweepChunk,
        "webhooks/job-accepted.json": JobAccepted,
        "webhooks/error.json": ErrorResponse,
    }
    models |= {f"jobs/{_slug(name)}.parameters.json": model for name, model in JOB_PARAMETERS.items()}
    return {
        name: json.dumps(model.model_json_schema(mode="serialization"), indent=2, sort_keys=True) + "\n"
        for name, model in sorted(models.items())
    }


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    written = []
    for name, content in generated_schemas().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        sys.stdout.write(f"{path}\n")
