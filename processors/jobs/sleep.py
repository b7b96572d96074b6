import asyncio
from typing import Any

from processors.jobs.context import JobContext, JobError
from schemas.jobs import SleepParameters


async def run_sleep(parameters: SleepParameters, context: JobContext) -> dict[str, Any]:
    steps = max(parameters.progress_steps, 1)
    for step in range(1, steps + 1):
        context.checkpoint()
        await asyncio.sleep(parameters.seconds / steps)
        if step < steps and parameters.progress_steps:
            await context.report_progress(step / steps, f"slept {step}/{steps}")
    context.checkpoint()
    if parameters.crash:
        raise RuntimeError("the job was asked to crash")
    if context.attempt <= parameters.fail_attempts:
        raise JobError(f"attempt {context.attempt} was asked to fail", retryable=True)
    if parameters.fail:
        raise JobError("the job was asked to fail", retryable=False)
    return {"slept_seconds": parameters.seconds}
