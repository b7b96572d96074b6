import ssl
from pathlib import Path

import faust
import pytest
from pydantic import SecretStr, ValidationError

from kernel.kafka_security import client_security
from kernel.settings import Settings
from processors.app import broker_credentials
from zixly.stack.kafka_tls import ensure_broker_tls


def secured(tmp_path: Path, **changes: object) -> Settings:
    options = {
        "kafka_bootstrap_servers": "kafka.example.com:9093",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_username": "zixly",
        "kafka_sasl_password": "s3cret",
        "kafka_ssl_cafile": ensure_broker_tls(tmp_path).ca_file,
    }
    return Settings(**(options | changes))  # type: ignore[arg-type]


def test_sasl_without_a_user_and_password_is_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match="ZIXLY_KAFKA_SASL_USERNAME and ZIXLY_KAFKA_SASL_PASSWORD"):
        Settings(kafka_security_protocol="SASL_SSL")


def test_a_client_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="go together"):
        secured(tmp_path, kafka_ssl_certfile=tmp_path / "client.pem")


def test_plaintext_clients_get_no_tls_and_no_credentials() -> None:
    assert client_security(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_clients_verify_the_broker_and_log_in_with_scram(tmp_path: Path) -> None:
    options = client_security(secured(tmp_path))
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == ("SCRAM-SHA-512", "zixly")
    assert options["sasl_plain_password"] == "s3cret"
    context: ssl.SSLContext = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "Zixly local Kafka CA"),),)]


def test_the_faust_workers_get_the_same_protocol_mechanism_and_user(tmp_path: Path) -> None:
    credentials = broker_credentials(secured(tmp_path, kafka_sasl_mechanism="SCRAM-SHA-256"))
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert (credentials.username, credentials.password) == ("zixly", "s3cret")


def test_tls_without_sasl_gives_the_faust_workers_tls_only(tmp_path: Path) -> None:
    credentials = broker_credentials(secured(tmp_path, kafka_security_protocol="SSL"))
    assert isinstance(credentials, faust.SSLCredentials)
    assert broker_credentials(Settings()) is None


def test_the_local_stack_trusts_its_own_ca_and_an_external_cluster_the_systems(tmp_path: Path) -> None:
    assert Settings(home=tmp_path).kafka_tls_ca == tmp_path / "kafka" / "tls" / "ca.pem"
    assert Settings(kafka_bootstrap_servers="kafka.example.com:9093").kafka_tls_ca is None


def test_the_password_is_never_shown_by_the_settings(tmp_path: Path) -> None:
    settings = secured(tmp_path)
    assert isinstance(settings.kafka_sasl_password, SecretStr)
    assert "s3cret" not in repr(settings)
