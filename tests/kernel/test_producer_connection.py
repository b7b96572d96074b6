import asyncio
from typing import Any

from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from kernel.producer_connection import ProducerConnection


class Producer:
    def __init__(self, number: int) -> None:
        self.number, self.stopped = number, False

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self.stopped = True


def connection() -> tuple[ProducerConnection, list[Producer]]:
    made: list[Producer] = []

    def factory() -> Any:
        made.append(Producer(len(made)))
        return made[-1]

    return ProducerConnection(factory, retry_seconds=0.01), made


async def test_a_producer_whose_session_the_broker_ended_is_replaced_by_a_new_one() -> None:
    kafka, made = connection()
    await kafka.start()
    first = kafka.producer
    kafka.replace_if_ended(first, OutOfOrderSequenceNumber())
    assert kafka.producer is None
    assert "session ended" in (kafka.last_error or "")
    for _ in range(100):
        if kafka.producer is not None:
            break
        await asyncio.sleep(0.01)
    assert kafka.producer is made[1]
    assert made[0].stopped
    await kafka.stop()


async def test_other_errors_and_already_replaced_producers_leave_the_connection_alone() -> None:
    kafka, made = connection()
    await kafka.start()
    kafka.replace_if_ended(kafka.producer, KafkaTimeoutError())
    assert kafka.producer is made[0]
    kafka.replace_if_ended(Producer(99), OutOfOrderSequenceNumber())  # type: ignore[arg-type]
    assert kafka.producer is made[0]
    assert len(made) == 1
    await kafka.stop()
