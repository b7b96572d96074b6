"""Production or development: what each mode refuses before a process starts.

Production (the default) refuses every secret of the local development stack, because those are public in this
repository, and refuses to take unsigned webhooks from unregistered tenants. Development serves loopback only, so
that its public secrets never guard anything reachable from another machine.
"""

import ipaddress
import sys
from urllib.parse import urlsplit

from kernel.settings import (
    DEVELOPMENT_CALLBACK_SECRET,
    DEVELOPMENT_MASTER_KEY,
    DEVELOPMENT_SESSION_KEY,
    LOCAL_S3_CREDENTIALS,
    SERVICE_DATABASE_ROLES,
    Settings,
    load_settings,
)


class UnsafeSettings(Exception):
    """The settings would run the process with public secrets or exposed to other hosts."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def production_problems(settings: Settings) -> list[str]:
    """Each development secret or permissive setting that production refuses, named by its variable."""
    problems = []
    if settings.callback_secret.get_secret_value() == DEVELOPMENT_CALLBACK_SECRET:
        problems.append("ZIXLY_CALLBACK_SECRET is the development placeholder")
    master_keys = settings.master_keys.get_secret_value()
    if DEVELOPMENT_MASTER_KEY.split(":", 1)[1] in master_keys:
        problems.append("ZIXLY_MASTER_KEYS holds the development master key")
    if DEVELOPMENT_SESSION_KEY in settings.session_keys.get_secret_value().split(","):
        problems.append("ZIXLY_SESSION_KEYS holds the development session key")
    if settings.allow_unregistered_tenants:
        problems.append("ZIXLY_ALLOW_UNREGISTERED_TENANTS is true: anyone could submit as an unregistered tenant")
    if settings.runs_own_s3 and not settings.s3_access_key_id:
        problems.append(
            "ZIXLY_S3_ENDPOINT_URL is unset and no ZIXLY_S3_ACCESS_KEY_ID is given: the local S3 endpoint "
            "(which accepts any keys) would be used with the stack's"
        )
    elif (settings.s3_access_key_id, settings.s3_secret_access_key) == LOCAL_S3_CREDENTIALS:
        problems.append("ZIXLY_S3_ACCESS_KEY_ID / ZIXLY_S3_SECRET_ACCESS_KEY are the local stack's")
    for service, role in SERVICE_DATABASE_ROLES.items():
        password = urlsplit(settings.service_database(service)).password  # type: ignore[arg-type]
        if password == role:
            problems.append(f"ZIXLY_{service.upper()}_DATABASE_URL is unset or uses the development password of {role}")
    if settings.kafka_security_protocol == "SASL_PLAINTEXT" and settings.kafka_sasl_mechanism == "PLAIN":
        problems.append(
            "ZIXLY_KAFKA_SASL_MECHANISM=PLAIN over SASL_PLAINTEXT sends the Kafka password in the clear: "
            "use SASL_SSL or SCRAM"
        )
    if settings.smtp_security == "none" and not is_loopback(settings.smtp_host):
        problems.append(
            f"ZIXLY_SMTP_SECURITY=none would send mail in the clear to {settings.smtp_host}: use starttls or tls"
        )
    if settings.oidc_issuer and not (settings.oidc_client_id and settings.oidc_client_secret):
        problems.append("ZIXLY_OIDC_ISSUER is set without ZIXLY_OIDC_CLIENT_ID and ZIXLY_OIDC_CLIENT_SECRET")
    return problems


def development_problems(settings: Settings) -> list[str]:
    """Development's public secrets guard loopback only: every listening address must be a loopback one."""
    binds = {
        "ZIXLY_RECEIVER_HOST": settings.receiver_host,
        "ZIXLY_DASHBOARD_HOST": settings.dashboard_host,
        "ZIXLY_METRICS_BIND_HOST": settings.metrics_bind_host,
    }
    return [f"{name}={host} is not a loopback address" for name, host in binds.items() if not is_loopback(host)]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check(settings: Settings) -> None:
    """Raises UnsafeSettings naming every problem of the settings' mode."""
    if settings.development:
        problems = development_problems(settings)
        if problems:
            problems.append("development mode serves loopback only; run with ZIXLY_ENV=production and real secrets")
    else:
        problems = production_problems(settings)
        if problems:
            problems.append(
                "set them (docs/security.md), or run the local development stack with ZIXLY_ENV=development"
            )
    if problems:
        raise UnsafeSettings(problems)


def checked_settings() -> Settings:
    """The settings for a process's entry point; it exits listing every problem instead of starting."""
    settings = load_settings()
    try:
        check(settings)
    except UnsafeSettings as unsafe:
        lines = "\n".join(f"  - {problem}" for problem in unsafe.problems)
        sys.exit(f"zixly: refusing to start in {settings.env} mode:\n{lines}")
    return settings
