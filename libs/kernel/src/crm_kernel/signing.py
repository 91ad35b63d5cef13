"""Signed, expiring tokens for public links (tracking, unsubscribe, order status, registration).

A token is `<payload>.<signature>`: the payload is base64url JSON, the signature an
HMAC-SHA256 over the purpose and the payload. The purpose keeps a token minted for
one kind of link from being accepted by another; nothing in the payload can be
changed without the secret, so ids in it cannot be enumerated or swapped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson

from crm_kernel.settings import ServiceSettings


class BadToken(ValueError):
    """The token is malformed, tampered with, for another purpose, or expired."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Mints and checks tokens for one purpose (e.g. "campaigns.click")."""

    def __init__(self, secret: str | bytes, purpose: str):
        if not secret:
            raise ValueError("a signing secret is required")
        self._key = secret.encode() if isinstance(secret, str) else secret
        self._purpose = purpose.encode()

    @classmethod
    def from_settings(cls, settings: ServiceSettings, purpose: str) -> Signer:
        return cls(settings.signing_key(), purpose)

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, self._purpose + b"." + payload.encode(), hashlib.sha256)
        return _b64(digest.digest())

    def sign(self, data: dict[str, Any], *, max_age_seconds: int | None = None) -> str:
        """A token carrying `data`; it expires after `max_age_seconds` when given."""
        body = dict(data)
        if max_age_seconds is not None:
            body["exp"] = int(time.time()) + max_age_seconds
        payload = _b64(orjson.dumps(body))
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str) -> dict[str, Any]:
        """The data in a token minted by `sign` for this purpose, or BadToken."""
        payload, _, signature = token.partition(".")
        if not payload or not signature or not hmac.compare_digest(signature, self._mac(payload)):
            raise BadToken("bad signature")
        try:
            data = orjson.loads(_unb64(payload))
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise BadToken("bad payload") from exc
        if not isinstance(data, dict):
            raise BadToken("bad payload")
        expires = data.pop("exp", None)
        if expires is not None and time.time() > expires:
            raise BadToken("expired")
        return data
