"""What looks like a credential, and the same text without it: for what is stored (events, errors) and shown (pages,
the read API). Jobs pass credentials as secret references (schemas/jobs.py SecretReference); this catches what
slips through anyway, and what an answer echoes back.
"""

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REDACTED = "[redacted]"

_CREDENTIAL_WORDS = (
    "auth",
    "token",
    "secret",
    "password",
    "passwd",
    "api-key",
    "apikey",
    "api_key",
    "cookie",
    "session",
    "signature",
    "credential",
    "private-key",
    "access-key",
)
_CREDENTIAL_QUERY_NAMES = frozenset({"key", "sig", "pwd", "code"})
_NAME = r"[A-Za-z0-9_.-]*(?:auth|token|secret|password|passwd|api[_-]?key|signature|sig|pwd|credential)[A-Za-z0-9_.-]*"
_PATTERNS = (
    # user:password@ in a URL
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{REDACTED}@"),
    # Authorization-style schemes
    (re.compile(r"(?i)\b(bearer|basic|token|digest)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # name=value in a query string or a form, and "name": "value" in JSON, for credential-looking names
    (re.compile(rf"(?i)([?&;\s]|^)({_NAME}|key)=([^&\s#]+)"), rf"\1\2={REDACTED}"),
    (re.compile(rf'(?i)("{_NAME}"\s*:\s*)"[^"]*"'), rf'\1"{REDACTED}"'),
    # header lines: "Authorization: …", "X-Api-Key: …"
    (re.compile(rf"(?im)^(\s*{_NAME}\s*:\s*).+$"), rf"\1{REDACTED}"),
)


def is_credential_name(name: str) -> bool:
    """A header or field whose value is a credential by its name: Authorization, Cookie, X-Api-Key, client_secret."""
    lowered = name.lower()
    return any(word in lowered for word in _CREDENTIAL_WORDS)


def credential_query_names(url: str) -> list[str]:
    """The query parameters of ``url`` that carry a credential by their name (``?api_key=…``, ``&token=…``)."""
    names = [name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
    return [name for name in names if is_credential_name(name) or name.lower() in _CREDENTIAL_QUERY_NAMES]


def redact_text(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_values(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with each known secret value (by name) replaced by its name: what an answer echoes back."""
    for name, value in secrets.items():
        if value:
            text = text.replace(value, f"[secret {name}]")
    return text


def redact(value: Any) -> Any:
    """A copy of a JSON-like value (job parameters, a result) with credential-looking fields and text redacted;
    a secret reference ({"secret": name}) is kept, since it is only a name."""
    if isinstance(value, Mapping):
        if set(value) == {"secret"} and isinstance(value["secret"], str):
            return dict(value)  # a reference: the name of a secret, not its value
        return {key: _redact_field(str(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _redact_field(name: str, value: Any) -> Any:
    if isinstance(value, str) and is_credential_name(name):
        return REDACTED
    return redact(value)


def literal_credentials(headers: Mapping[str, object]) -> list[str]:
    """Headers that carry a credential as plain text instead of a secret reference."""
    return [name for name, value in headers.items() if isinstance(value, str) and is_credential_name(name)]
