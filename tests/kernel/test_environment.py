import pytest

from kernel.environment import UnsafeSettings, check, development_problems, production_problems
from kernel.secret_box import generate_master_key
from kernel.settings import Settings

REAL = {
    "env": "production",
    "callback_secret": "a-real-callback-secret",
    "master_keys": generate_master_key("k1"),
    "session_keys": "a-real-session-key",
    "s3_endpoint_url": "aws",
    "receiver_database_url": "postgresql://zixly_receiver:s3cret@db/zixly",
    "dashboard_database_url": "postgresql://zixly_dashboard:s3cret@db/zixly",
    "worker_database_url": "postgresql://zixly_worker:s3cret@db/zixly",
}


def production(**changes: object) -> Settings:
    return Settings(**(REAL | changes))  # type: ignore[arg-type]


def test_production_with_real_secrets_starts() -> None:
    assert production_problems(production()) == []
    check(production())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"callback_secret": "zixly-local-callback-secret"}, "ZIXLY_CALLBACK_SECRET"),
        ({"master_keys": "dev:aXYa2ynW6/bEtuTjR9R0iFH9R0jGKi6O3itbwbVLaow="}, "ZIXLY_MASTER_KEYS"),
        ({"session_keys": "zixly-development-session-key"}, "ZIXLY_SESSION_KEYS"),
        ({"allow_unregistered_tenants": True}, "ZIXLY_ALLOW_UNREGISTERED_TENANTS"),
        ({"s3_endpoint_url": None}, "ZIXLY_S3_ENDPOINT_URL"),
        (
            {
                "s3_endpoint_url": "http://minio:9000",
                "s3_access_key_id": "zixly",
                "s3_secret_access_key": "zixly-local",
            },
            "ZIXLY_S3_ACCESS_KEY_ID",
        ),
        ({"dashboard_database_url": None}, "ZIXLY_DASHBOARD_DATABASE_URL"),
        ({"worker_database_url": None}, "ZIXLY_WORKER_DATABASE_URL"),
        ({"receiver_database_url": None}, "ZIXLY_RECEIVER_DATABASE_URL"),
        ({"oidc_issuer": "https://id.example.com"}, "ZIXLY_OIDC_CLIENT_ID"),
        (
            {
                "kafka_security_protocol": "SASL_PLAINTEXT",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "zixly",
                "kafka_sasl_password": "s3cret",
            },
            "ZIXLY_KAFKA_SASL_MECHANISM",
        ),
        ({"smtp_host": "smtp.example.com", "smtp_security": "none"}, "ZIXLY_SMTP_SECURITY"),
    ],
)
def test_production_refuses_each_development_secret_by_name(change: dict[str, object], named: str) -> None:
    problems = production_problems(production(**change))
    assert any(named in problem for problem in problems), problems
    with pytest.raises(UnsafeSettings):
        check(production(**change))


def test_production_takes_no_unsigned_tenants_and_development_does_by_default() -> None:
    assert production().accepts_unregistered_tenants is False
    assert Settings(env="development").accepts_unregistered_tenants is True
    assert Settings(env="development", allow_unregistered_tenants=False).accepts_unregistered_tenants is False


@pytest.mark.parametrize("setting", ["receiver_host", "dashboard_host", "metrics_bind_host"])
def test_development_refuses_to_listen_beyond_loopback(setting: str) -> None:
    settings = Settings(env="development", **{setting: "0.0.0.0"})  # type: ignore[arg-type]
    assert any("0.0.0.0" in problem for problem in development_problems(settings))
    with pytest.raises(UnsafeSettings, match="loopback"):
        check(settings)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_development_serves_every_loopback_address(host: str) -> None:
    check(Settings(env="development", receiver_host=host, dashboard_host=host, metrics_bind_host=host))


def test_the_services_log_in_with_their_own_roles_derived_from_the_database_url() -> None:
    settings = Settings(database_url="postgresql://owner:pw@db.internal:6432/zixly")
    assert (
        settings.service_database("dashboard") == "postgresql://zixly_dashboard:zixly_dashboard@db.internal:6432/zixly"
    )
    assert settings.service_database("receiver").startswith("postgresql://zixly_receiver:")
    explicit = Settings(dashboard_database_url="postgres://dash:x@db/zixly")
    assert explicit.service_database("dashboard") == "postgresql://dash:x@db/zixly"


def test_production_lets_mail_go_without_tls_to_a_relay_on_this_host_only() -> None:
    assert production_problems(production(smtp_host="127.0.0.1", smtp_security="none")) == []
