"""Allocation credentials at rest: AES-256-GCM, bound to the row they belong to.

The key is 32 random bytes, written as URL-safe base64. Each sealed value is ``v1:`` + base64 of a
fresh 12-byte nonce followed by the ciphertext and tag; the associated data names the allocation,
so a ciphertext copied onto another row does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..core.errors import ConfigurationError, FacilityError

KEY_ENV = "FACILITY_APIS_SECRET_KEY"
_VERSION = "v1:"


class SealError(FacilityError):
    """A sealed value could not be opened: wrong key, or the stored bytes were altered."""


def generate_key() -> str:
    """A new key, as the text to keep in a key file or in ``FACILITY_APIS_SECRET_KEY``."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def parse_key(text: str) -> bytes:
    """Decode a key; ``ConfigurationError`` when it is not 32 bytes of URL-safe base64."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ConfigurationError("the secret key is not URL-safe base64 (make one with `facility-apis keygen`)") from None
    if len(key) != 32:
        raise ConfigurationError(f"the secret key must decode to 32 bytes, not {len(key)} (make one with `facility-apis keygen`)")
    return key


def write_key_file(path: Path) -> str:
    """Create ``path`` holding a new key, readable only by its owner; return the key."""
    key = generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


class SecretBox:
    """Seals and opens JSON values with one key."""

    def __init__(self, key: str | bytes):
        raw = parse_key(key) if isinstance(key, str) else key
        self._aead = AESGCM(raw)
        self._signing_key = hmac.digest(raw, b"facility_apis gateway signing", "sha256")

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def sign(self, text: str) -> str:
        """A MAC of ``text`` (hex), for URLs the gateway hands out, e.g. facility callbacks."""
        return hmac.new(self._signing_key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def verify(self, text: str, signature: str) -> bool:
        """Whether ``signature`` is ``sign(text)``, compared in constant time."""
        return hmac.compare_digest(self.sign(text), signature)

    def seal(self, value: Any, context: str) -> str:
        nonce = os.urandom(12)
        plaintext = json.dumps(value, separators=(",", ":")).encode("utf-8")
        sealed = nonce + self._aead.encrypt(nonce, plaintext, context.encode("utf-8"))
        return _VERSION + base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, sealed: str, context: str) -> Any:
        if not sealed.startswith(_VERSION):
            raise SealError("stored credentials are in an unknown format")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_VERSION) :].encode("ascii"))
            plaintext = self._aead.decrypt(raw[:12], raw[12:], context.encode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError(f"stored credentials of {context} do not open with this key (wrong key, or altered data)") from None
        return json.loads(plaintext)
