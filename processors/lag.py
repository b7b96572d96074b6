"""Consumer lag per assigned partition: log end offset minus the worker's position."""

from typing import Any

from processors.metrics import CONSUMER_LAG


async def record_lag(app: Any) -> None:
    consumer = app.consumer
    assigned = consumer.assignment()
    CONSUMER_LAG.clear()
    for tp in assigned:
        try:
            highwater = consumer.highwater(tp)
            position = await consumer.position(tp)
        except Exception:  # a partition being revoked mid-way is reported next round
            continue
        if highwater is None or position is None:
            continue
        CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))
