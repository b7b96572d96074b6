import base64
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import SecretStr

from kernel.settings import Settings
from zixly.stack.kafka_broker import KafkaBroker, new_cluster_id
from zixly.stack.kafka_tls import ensure_broker_tls


def test_a_cluster_id_is_a_base64_uuid_that_never_starts_like_an_option() -> None:
    # One random id in 64 starts with "-"; two thousand of them would all but surely include some.
    ids = [new_cluster_id() for _ in range(2000)]
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 for cluster_id in ids)
    assert len(set(ids)) == len(ids)


def broker_properties(settings: Settings) -> dict[str, str]:
    lines = KafkaBroker(settings)._write_config().read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_a_plaintext_stack_serves_one_plaintext_listener_on_loopback(tmp_path: Path) -> None:
    properties = broker_properties(Settings(home=tmp_path, kafka_port=29092, kafka_controller_port=29093))
    assert properties["listeners"] == "CLIENT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert properties["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,CLIENT:PLAINTEXT"
    assert not [name for name in properties if "sasl" in name or "ssl" in name]


def test_a_sasl_ssl_stack_serves_tls_with_its_own_ca_and_scram_with_the_settings_user(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="zixly",
        kafka_sasl_password=SecretStr("s3cret-pw"),
    )
    properties = broker_properties(settings)
    assert properties["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,CLIENT:SASL_SSL"
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert properties["inter.broker.listener.name"] == "CLIENT"
    assert 'username="zixly" password="s3cret-pw"' in properties["listener.name.client.scram-sha-512.sasl.jaas.config"]
    assert properties["listener.name.client.ssl.truststore.location"] == str(settings.kafka_tls_ca)
    keystore = Path(properties["listener.name.client.ssl.keystore.location"])
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "kafka" / "server.properties").stat().st_mode) == 0o600


def test_the_broker_certificate_is_signed_by_the_stacks_ca_for_loopback_and_kept(tmp_path: Path) -> None:
    tls = ensure_broker_tls(tmp_path)
    _, certificate, _ = pkcs12.load_key_and_certificates(tls.keystore.read_bytes(), tls.password.encode())
    assert certificate is not None
    ca = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
    certificate.verify_directly_issued_by(ca)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert ensure_broker_tls(tmp_path) == tls  # made once, not on every start


@pytest.mark.parametrize("password", ["has space", 'quo"te', "semi;colon", "brack]et"])
def test_a_local_scram_password_that_the_broker_config_cannot_quote_is_refused(tmp_path: Path, password: str) -> None:
    settings = Settings(
        home=tmp_path,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="zixly",
        kafka_sasl_password=SecretStr(password),
    )
    with pytest.raises(RuntimeError, match="ZIXLY_KAFKA_SASL_PASSWORD"):
        broker_properties(settings)


def test_each_node_of_a_three_broker_cluster_has_its_own_ports_and_folder_and_all_know_the_voters(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path, kafka_port=29092, kafka_controller_port=29093, kafka_brokers=3)
    nodes = [broker_properties_of(KafkaBroker(settings, node)) for node in (1, 2, 3)]

    assert [node["listeners"] for node in nodes] == [
        f"CLIENT://127.0.0.1:{29092 + 2 * n},CONTROLLER://127.0.0.1:{29093 + 2 * n}" for n in range(3)
    ]
    assert {node["controller.quorum.voters"] for node in nodes} == {
        "1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097"
    }
    assert [node["node.id"] for node in nodes] == ["1", "2", "3"]
    assert len({node["log.dirs"] for node in nodes}) == 3
    assert {(node["default.replication.factor"], node["min.insync.replicas"]) for node in nodes} == {("3", "2")}
    assert {node["offsets.topic.replication.factor"] for node in nodes} == {"3"}
    assert settings.kafka_bootstrap == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"


def test_a_single_broker_keeps_one_replica_of_everything(tmp_path: Path) -> None:
    properties = broker_properties(Settings(home=tmp_path))

    assert properties["default.replication.factor"] == "1"
    assert properties["min.insync.replicas"] == "1"
    assert properties["offsets.topic.replication.factor"] == "1"


@pytest.mark.parametrize(
    ("version", "config", "option"),
    [
        ("3.9.1", "log4j.properties", "-Dlog4j.configuration="),
        ("4.4.0", "log4j2.properties", "-Dlog4j2.configurationFile="),
    ],
)
def test_the_broker_logs_with_the_logging_library_of_its_release(
    tmp_path: Path, version: str, config: str, option: str
) -> None:
    broker = KafkaBroker(Settings(home=tmp_path, kafka_version=version))
    broker._write_config()

    assert (tmp_path / "kafka" / config).is_file()
    assert broker._logging_option == f"{option}file:{tmp_path / 'kafka' / config}"
    assert broker.libs.parent.name == f"kafka-{version}"


def broker_properties_of(broker: KafkaBroker) -> dict[str, str]:
    return dict(line.split("=", 1) for line in broker._write_config().read_text().splitlines())
