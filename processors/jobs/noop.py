from typing import Any

from processors.jobs.context import JobContext
from schemas.jobs import NoopParameters


async def run_noop(parameters: NoopParameters, context: JobContext) -> dict[str, Any]:
    return {"echo": parameters.echo}
