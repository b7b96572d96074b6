import asyncio
from typing import Any

from processors.jobs.context import JobContext, JobError
from schemas.jobs import PRODUCTION_LONGEST_SLEEP, SleepParameters


async def run_sleep(parameters: SleepParameters, context: JobContext) -> dict[str, Any]:
    if not context.development and (used := parameters.test_options(PRODUCTION_LONGEST_SLEEP)):
        # The receiver refuses these in production; a job that reached the log another way still does not run them.
        raise JobError(f"{', '.join(used)}: test-only options are honoured in development only", retryable=False)
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
