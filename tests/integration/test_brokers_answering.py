"""A cluster counts as up when each broker it names answers, not when it names enough of them: after a restart of
the whole cluster it still names brokers that are starting (a ``stack up --brokers 3`` failed in CI that way)."""

import asyncio
import socket

import pytest

from kernel.kafka import brokers_answering, wait_for_brokers
from kernel.settings import Settings


def test_a_broker_that_answers_counts_and_a_port_that_refuses_does_not(stack: Settings) -> None:
    # Bound but not listening: a connection to it is refused, as to a broker that has not opened its listener yet.
    with socket.socket() as starting:
        starting.bind(("127.0.0.1", 0))
        refusing = f"127.0.0.1:{starting.getsockname()[1]}"
        broker = stack.kafka_bootstrap.split(",")[0]
        assert asyncio.run(brokers_answering(stack, [broker, refusing])) == 1
        assert asyncio.run(brokers_answering(stack, [broker])) == 1


def test_waiting_for_more_brokers_than_the_cluster_has_times_out_saying_how_many_joined(stack: Settings) -> None:
    with pytest.raises(TimeoutError, match="1 of 2 brokers joined"):
        asyncio.run(wait_for_brokers(stack, 2, timeout=3))
