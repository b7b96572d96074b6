"""Kafka over SASL_SSL with SCRAM: the local broker configured with both, the whole pipeline through it (the
receiver's producer, the Faust worker, the projector's consumer, the admin client that made the topics), and what the
broker refuses: a wrong password, a client without TLS, a client that does not trust its CA."""

import asyncio
import logging
import secrets
import shutil
import uuid
from collections.abc import Iterator

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from kernel.kafka import ensure_topics, make_admin
from kernel.settings import Settings
from kernel.topics import project_topics
from tests.integration.conftest import METRICS_READY, RECEIVER_READY, start_service
from tests.integration.isolated import isolated_read_model
from tests.integration.test_pipeline_end_to_end import wait_for_status
from tests.ports import reserve_port
from zixly.stack.kafka_broker import KafkaBroker
from zixly.stack.kafka_tls import ensure_broker_tls


@pytest.fixture(scope="module")
def secure(stack: Settings) -> Iterator[Settings]:
    """A broker of the module's own whose only client listener is SASL_SSL, with one SCRAM-SHA-512 user."""
    home = stack.home / "secure-kafka" / uuid.uuid4().hex[:8]
    settings = stack.replaced(
        home=home,
        cache_dir=stack.cache,
        kafka_bootstrap_servers=None,
        kafka_port=reserve_port(),
        kafka_controller_port=reserve_port(),
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="zixly-test",
        kafka_sasl_password=SecretStr(secrets.token_urlsafe(18)),
    )
    broker = KafkaBroker(settings)
    broker.start()
    try:
        yield settings
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)


def service_environment(settings: Settings) -> dict[str, str]:
    """What an operator sets for a secured cluster: the protocol, the user and the CA, all explicit."""
    password = settings.kafka_sasl_password
    assert password is not None
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap,
        "ZIXLY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "ZIXLY_KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
        "ZIXLY_KAFKA_SASL_USERNAME": str(settings.kafka_sasl_username),
        "ZIXLY_KAFKA_SASL_PASSWORD": password.get_secret_value(),
        "ZIXLY_KAFKA_SSL_CAFILE": str(settings.kafka_tls_ca),
        "DATABASE_URL": settings.database,
        "ZIXLY_JOB_EVENTS_TOPIC": settings.job_events_topic,
        "ZIXLY_TOPIC_PARTITIONS": str(settings.topic_partitions),
    }


def lists_topics(settings: Settings) -> list[str]:
    async def run() -> list[str]:
        admin = make_admin(settings)
        await asyncio.wait_for(admin.start(), 15)
        try:
            return sorted(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(run())


def test_a_job_runs_end_to_end_over_sasl_ssl_with_scram(secure: Settings) -> None:
    with isolated_read_model(secure) as settings:
        asyncio.run(ensure_topics(settings, project_topics(settings)))
        env = service_environment(settings)
        receiver = start_service(settings, "receiver", ["receiver"], RECEIVER_READY, env | {"ZIXLY_RECEIVER_PORT": "0"})
        services = [
            receiver,
            start_service(
                settings,
                "worker",
                ["worker", "--metrics-port", "0"],
                METRICS_READY,
                env,
            ),
            start_service(
                settings,
                "projector",
                ["projector", "--metrics-port", "0"],
                METRICS_READY,
                env,
            ),
        ]
        try:
            tenant = f"t-{uuid.uuid4().hex[:12]}"
            accepted = httpx.post(
                f"http://127.0.0.1:{receiver.port}/webhook/generic-job",
                json={"job_type": "sleep", "parameters": {"seconds": 0.1}},
                headers={"X-Tenant-ID": tenant},
                timeout=30,
            )
            assert accepted.status_code == 202, accepted.text
            job = wait_for_status(accepted.json()["status_url"], tenant, {"COMPLETED"}, timeout=90)
            assert job["result"] == {"slept_seconds": 0.1}
        finally:
            for service in services:
                service.stop()


def refusal(settings: Settings, caplog: pytest.LogCaptureFixture) -> str:
    """Why the broker would not serve ``settings``' client: what the client logged as it gave up."""
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        lists_topics(settings)
    return caplog.text


def test_a_wrong_password_is_refused_where_the_right_one_is_let_in(
    secure: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(lists_topics(secure), list)
    wrong = secure.replaced(kafka_sasl_password=SecretStr("not-the-password"))
    assert "SaslAuthenticationFailed" in refusal(wrong, caplog)


def test_a_client_without_tls_is_cut_off(secure: Settings, caplog: pytest.LogCaptureFixture) -> None:
    assert "closed" in refusal(secure.replaced(kafka_security_protocol="SASL_PLAINTEXT"), caplog)
    assert "closed" in refusal(secure.replaced(kafka_security_protocol="PLAINTEXT"), caplog)


def test_a_client_that_does_not_trust_the_brokers_ca_refuses_it(
    secure: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    another_ca = ensure_broker_tls(secure.home / "another-ca").ca_file
    distrustful = secure.replaced(kafka_ssl_cafile=another_ca)
    assert "CERTIFICATE_VERIFY_FAILED" in refusal(distrustful, caplog)
