import pytest

from kernel.hosts import host_allowed
from kernel.settings import Settings


def test_kafka_and_postgres_default_to_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(kafka_port=19092, postgres_port=15432)
    assert settings.runs_own_kafka
    assert settings.runs_own_postgres
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.database == "postgresql://zixly:zixly@127.0.0.1:15432/zixly"


def test_the_standard_environment_variables_point_at_existing_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/x")
    settings = Settings()
    assert not settings.runs_own_kafka
    assert not settings.runs_own_postgres
    assert settings.kafka_bootstrap == "broker:9092"
    assert settings.database == "postgresql://u:p@db:5432/x"
    assert settings.sqlalchemy_url == "postgresql+psycopg://u:p@db:5432/x"


def test_allowed_hosts_can_be_given_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZIXLY_HTTP_ALLOWED_HOSTS", "api.example.com, *.partner.io")
    assert Settings().http_allowed_hosts == ["api.example.com", "*.partner.io"]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.example.com", True),
        ("API.EXAMPLE.COM", True),
        ("x.partner.io", True),
        ("partner.io", False),
        ("evilpartner.io", False),
        ("example.com", False),
    ],
)
def test_a_host_is_allowed_only_when_listed_or_under_a_wildcard(host: str, allowed: bool) -> None:
    assert host_allowed(host, ["api.example.com", "*.partner.io"]) is allowed
