"""Scheduling retries on the retry topic, and the dead-letter sink the runner uses."""

from kernel.publisher import KafkaRecordSender
from schemas.retries import RetryRequest


class KafkaRetryScheduler:
    def __init__(self, sender: KafkaRecordSender, topic: str) -> None:
        self._sender = sender
        self._topic = topic

    async def schedule(self, retry: RetryRequest) -> None:
        await self._sender.send_all(
            self._topic, [(str(retry.request.job_id).encode(), retry.model_dump_json().encode())]
        )
