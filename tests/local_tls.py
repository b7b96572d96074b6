"""TLS for the tests' own servers on loopback: a certificate for 127.0.0.1 and localhost, signed by a CA of the
test's own (the same kind the local Kafka broker uses), and the CA file that clients are told to trust."""

import ssl
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from zixly.stack.kafka_tls import ensure_broker_tls


def server_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for loopback and the CA file that signs it."""
    tls = ensure_broker_tls(folder)
    key, certificate, _ = pkcs12.load_key_and_certificates(tls.keystore.read_bytes(), tls.password.encode())
    assert key is not None
    assert certificate is not None
    chain = folder / "server.pem"
    chain.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + certificate.public_bytes(serialization.Encoding.PEM)
    )
    chain.chmod(0o600)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    return context, tls.ca_file
