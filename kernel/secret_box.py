"""Secrets at rest, by envelope encryption: each value has a data key of its own, and only that data key is
encrypted with a master key, which lives in the environment (or a secrets manager feeding it), never in the
database.

A sealed value reads ``zx1:<master key id>:<wrapped data key>:<nonce + ciphertext>`` (base64). The value is bound
to where it is stored (``context``: table, column and row), so a ciphertext copied into another row does not open.
Rotating the master key re-wraps the data keys only (``zixly keys rotate``); the values themselves are not
re-encrypted.
"""

import base64
import binascii
import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "zx1"
_NONCE_BYTES = 12


class SecretBoxError(Exception):
    """A sealed value that cannot be opened: an unknown master key, a damaged value, or another row's value."""


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    key: bytes


def parse_master_keys(text: str) -> list[MasterKey]:
    """``id:base64,id:base64``, newest first."""
    keys = []
    for item in text.split(","):
        if not item.strip():
            continue
        key_id, _, encoded = item.strip().partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"master key {key_id!r} is not base64") from exc
        if not key_id or ":" in key_id or len(key) != 32:
            raise ValueError(f"master key {key_id!r} must read 'id:<base64 of 32 bytes>'")
        keys.append(MasterKey(key_id, key))
    if not keys:
        raise ValueError("no master key is configured (ZIXLY_MASTER_KEYS)")
    return keys


def generate_master_key(key_id: str | None = None) -> str:
    """A new master key in the configuration's format."""
    return f"{key_id or 'k' + secrets.token_hex(4)}:{base64.b64encode(os.urandom(32)).decode()}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretBox:
    def __init__(self, master_keys: list[MasterKey]) -> None:
        if not master_keys:
            raise ValueError("a secret box needs a master key")
        self._current = master_keys[0]
        self._keys = {key.key_id: key for key in master_keys}

    @classmethod
    def from_text(cls, text: str) -> "SecretBox":
        return cls(parse_master_keys(text))

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    def seal(self, plaintext: str, context: str) -> str:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext.encode(), context.encode())
        return ":".join((PREFIX, self._current.key_id, self._wrap(data_key, self._current), _b64(nonce + ciphertext)))

    def open(self, sealed: str, context: str) -> str:
        key_id, wrapped, body = self._parts(sealed)
        data_key = self._unwrap(wrapped, self._key(key_id))
        raw = _unb64(body)
        try:
            return AESGCM(data_key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
        except InvalidTag as exc:
            raise SecretBoxError("the sealed value does not belong here or was altered") from exc

    def rewrap(self, sealed: str) -> str:
        """The same value with its data key wrapped by the current master key (unchanged if it already is)."""
        key_id, wrapped, body = self._parts(sealed)
        if key_id == self._current.key_id:
            return sealed
        data_key = self._unwrap(wrapped, self._key(key_id))
        return ":".join((PREFIX, self._current.key_id, self._wrap(data_key, self._current), body))

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(PREFIX + ":")

    @staticmethod
    def key_id_of(sealed: str) -> str:
        return SecretBox._parts(sealed)[0]

    def _key(self, key_id: str) -> MasterKey:
        try:
            return self._keys[key_id]
        except KeyError:
            raise SecretBoxError(
                f"sealed with master key {key_id!r}, which ZIXLY_MASTER_KEYS does not hold; add it back"
            ) from None

    @staticmethod
    def _parts(sealed: str) -> tuple[str, str, str]:
        parts = sealed.split(":")
        if len(parts) != 4 or parts[0] != PREFIX:
            raise SecretBoxError("not a sealed value")
        return parts[1], parts[2], parts[3]

    @staticmethod
    def _wrap(data_key: bytes, master: MasterKey) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        return _b64(nonce + AESGCM(master.key).encrypt(nonce, data_key, master.key_id.encode()))

    @staticmethod
    def _unwrap(wrapped: str, master: MasterKey) -> bytes:
        raw = _unb64(wrapped)
        try:
            return AESGCM(master.key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], master.key_id.encode())
        except InvalidTag as exc:
            raise SecretBoxError(f"master key {master.key_id!r} does not open this value") from exc
