"""Scheduling retries on the retry topic."""

from kernel.publisher import KafkaRecordSender
from schemas.retries import RetryRequest


class KafkaRetryScheduler:
    def __init__(self, sender: KafkaRecordSender, topic: str, patience_seconds: float) -> None:
        self._sender = sender
        self._topic = topic
        self._patience = patience_seconds

    async def schedule(self, retry: RetryRequest) -> None:
        await self._sender.send_all(
            self._topic, [(str(retry.request.job_id).encode(), retry.model_dump_json().encode())]
        )
