"""Two-factor authentication (TOTP, RFC 6238): secrets encrypted at rest, codes good once."""

from __future__ import annotations

import base64
import hashlib
import time

import pyotp
from cryptography.fernet import Fernet, InvalidToken

from crm_gateway.settings import GatewaySettings

# Codes of the previous and next 30-second step are accepted too (clock drift).
VALID_WINDOW = 1
STEP_SECONDS = 30


def totp_key(settings: GatewaySettings) -> bytes:
    """The deployment's own secret: the signing key, or with RS256 alone the private key."""
    if settings.signing_secret or settings.jwt_secret:
        return settings.signing_key()
    return settings.jwt_private_key.encode()


class TotpSecrets:
    """Encrypts TOTP secrets with a key derived from the deployment's signing key."""

    def __init__(self, signing_key: bytes, *, issuer: str):
        key = hashlib.sha256(b"crm-gateway-totp:" + signing_key).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.issuer = issuer

    def new_secret(self) -> str:
        return pyotp.random_base32()

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, stored: str) -> str | None:
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken:
            return None  # the signing key changed: the user sets 2FA up again

    def uri(self, secret: str, email: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=self.issuer)


def accepted_step(secret: str, code: str, *, last_step: int | None) -> int | None:
    """The time step `code` is valid for, if any and later than the last one used (no replay)."""
    code = code.strip().replace(" ", "")
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // STEP_SECONDS
    for step in range(now - VALID_WINDOW, now + VALID_WINDOW + 1):
        if totp.at(step * STEP_SECONDS) == code and (last_step is None or step > last_step):
            return step
    return None
