"""The local broker's TLS: a CA of its own and a server certificate for 127.0.0.1 and localhost, made once.

Clients trust ``ca.pem`` (Settings.kafka_tls_ca points there when the stack runs the broker); the broker reads its
key and certificate from a PKCS#12 keystore whose random password sits beside it. Every file is the owner's only.
"""

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=825)


@dataclass(frozen=True)
class BrokerTls:
    ca_file: Path
    keystore: Path
    password: str


def ensure_broker_tls(folder: Path) -> BrokerTls:
    """The CA and the broker's keystore in ``folder``, made when missing (or when the certificate has expired)."""
    tls = BrokerTls(folder / "ca.pem", folder / "broker.p12", "")
    password_file = folder / "keystore-password"
    if tls.ca_file.is_file() and tls.keystore.is_file() and password_file.is_file():
        password = password_file.read_text().strip()
        if _valid_for_a_day(tls.keystore, password):
            return BrokerTls(tls.ca_file, tls.keystore, password)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(24)
    ca_key, ca = _certificate_authority()
    key, certificate = _broker_certificate(ca_key, ca)
    _write_private(tls.ca_file, ca.public_bytes(serialization.Encoding.PEM))
    keystore = pkcs12.serialize_key_and_certificates(
        b"broker", key, certificate, [ca], serialization.BestAvailableEncryption(password.encode())
    )
    _write_private(tls.keystore, keystore)
    _write_private(password_file, password.encode())
    return BrokerTls(tls.ca_file, tls.keystore, password)


def _certificate_authority() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Zixly local Kafka CA")])
    certificate = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _broker_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        _builder(name, ca.subject, key.public_key())
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # The broker is a server to clients and a client of itself (its inter-broker listener is the same one).
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
    )


def _valid_for_a_day(keystore: Path, password: str) -> bool:
    try:
        _, certificate, _ = pkcs12.load_key_and_certificates(keystore.read_bytes(), password.encode())
    except ValueError:
        return False
    tomorrow = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    return certificate is not None and certificate.not_valid_after_utc > tomorrow


def _write_private(path: Path, content: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(content)
