"""How a client proves itself to the brokers and checks them: TLS against a CA, SASL (SCRAM) credentials.

One source for every client: the aiokafka producers, consumers and admin clients (kernel.kafka) and the Faust
workers' (processors.app) get the same options from here.
"""

import ssl
from typing import Any

from kernel.settings import Settings


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """Verifies the broker's certificate and its name (TLS 1.2 at least), against the configured CA or the
    system's; presents a client certificate when one is set."""
    ca = settings.kafka_tls_ca
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.kafka_ssl_certfile is not None and settings.kafka_ssl_keyfile is not None:
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    return context


def client_security(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of an aiokafka client for the configured protocol."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_uses_tls:
        options["ssl_context"] = kafka_ssl_context(settings)
    if settings.kafka_uses_sasl:
        assert settings.kafka_sasl_password is not None  # the settings refuse SASL without it
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return options
