"""A real OpenID Connect provider for the tests: mock-oauth2-server from Maven Central, run as a process.

It serves discovery, a JWKS, the authorization-code flow with an interactive login form (a user name and the
claims to put in the id token) and a token endpoint; its issuer ``zixly`` hands out access tokens for the bearer
tests by scope: ``good``, ``expired`` (an ``exp`` in the past) and ``foreign`` (another audience).
"""

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kernel.settings import Settings
from tests.listening import listening_port
from zixly.stack.processes import spawn, terminate

VERSION = "2.1.10"
POM = Path(__file__).resolve().parents[1] / "deploy" / "oidc" / "pom.xml"
MAIN = "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt"
ISSUER_ID = "zixly"
CLIENT_ID = "zixly-dashboard"
CLIENT_SECRET = "test-client-secret"


def _claims(**extra: object) -> dict[str, object]:
    return {"sub": "service-1", "aud": [CLIENT_ID], "zixly_tenant": "acme", "zixly_role": "viewer"} | extra


CONFIG = {
    "interactiveLogin": True,
    "httpServer": "NettyWrapper",
    "tokenCallbacks": [
        {
            "issuerId": ISSUER_ID,
            "tokenExpiry": 300,
            "requestMappings": [
                {"requestParam": "scope", "match": "expired", "claims": _claims(exp=1_000_000_000, iat=999_999_000)},
                {"requestParam": "scope", "match": "foreign", "claims": _claims(aud=["someone-else"])},
                {"requestParam": "scope", "match": "platform", "claims": _claims(zixly_role="platform-admin")},
                {"requestParam": "scope", "match": "*", "claims": _claims()},
            ],
        }
    ],
}


@dataclass(frozen=True)
class Provider:
    base_url: str

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/{ISSUER_ID}"

    def token(self, scope: str = "good") -> str:
        """An access token from the provider's token endpoint (client credentials)."""
        data = f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&scope={scope}"
        with urllib.request.urlopen(f"{self.issuer}/token", data=data.encode(), timeout=10) as response:
            return str(json.load(response)["access_token"])

    def settings_env(self) -> dict[str, str]:
        return {
            "ZIXLY_OIDC_ISSUER": self.issuer,
            "ZIXLY_OIDC_CLIENT_ID": CLIENT_ID,
            "ZIXLY_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        }


def fetch_jars(settings: Settings) -> Path:
    libs = settings.cache / f"mock-oauth2-server-{VERSION}" / "libs"
    if (libs / ".complete").exists():
        return libs
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed to fetch the OIDC provider's jars")
    libs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        check=True,
    )
    (libs / ".complete").touch()
    return libs


def signing_key() -> str:
    """A new RSA signing key as a JWK (the provider names it after its issuer whatever its own kid)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    jwk = json.loads(RSAAlgorithm.to_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    return json.dumps(jwk | {"alg": "RS256", "use": "sig", "kid": ISSUER_ID})


@contextmanager
def oidc_provider(settings: Settings, port: int | None = None, key: str | None = None) -> Iterator[Provider]:
    """The provider on ``port`` (by default one the system picks, read from the process's listening socket: the
    provider does not report it), signing with ``key`` (a JWK; its own by default)."""
    libs = fetch_jars(settings)
    config = CONFIG | ({"tokenProvider": {"keyProvider": {"initialKeys": key, "algorithm": "RS256"}}} if key else {})
    env = os.environ | {
        "SERVER_PORT": str(port or 0),
        "SERVER_HOSTNAME": "127.0.0.1",
        "JSON_CONFIG": json.dumps(config),
    }
    log_path = settings.home / "logs" / "tests" / f"oidc-{time.time_ns()}.log"
    process = spawn(["java", "-Xmx256m", "-cp", f"{libs}/*", MAIN], log_path, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                port = port or listening_port(process.pid)
                if port is None:
                    raise ConnectionRefusedError("not listening yet")
                provider = Provider(f"http://127.0.0.1:{port}")
                with urllib.request.urlopen(f"{provider.issuer}/.well-known/openid-configuration", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the OIDC provider did not start:\n{log_path.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield provider
    finally:
        terminate(process.pid, timeout=10)
        process.wait()
