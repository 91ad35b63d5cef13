"""DKIM signing (RFC 6376, relaxed/relaxed) with OpenSSL-backed keys from `cryptography`.

RSA-SHA256 or Ed25519-SHA256 (RFC 8463), chosen by the key. The message is
canonicalised once, on the exact bytes that go over the wire (CRLF line
ends); the signature header is returned to be put in front of them.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

# Signed when present; From is mandatory. Listed once each, as we write them once each.
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "list-unsubscribe",
    "list-unsubscribe-post",
)
_WSP = re.compile(rb"[ \t]+")


def _headers(head: bytes) -> dict[str, bytes]:
    """Header fields by lower-case name (the first of each), unfolded, value as raw bytes."""
    found: dict[str, bytes] = {}
    name: str | None = None
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and name is not None:
            found[name] += b"\r\n" + line
            continue
        raw_name, _, value = line.partition(b":")
        name = raw_name.decode("ascii", "replace").strip().lower()
        if name in found:
            name = None  # a repeated field: keep the first only
            continue
        found[name] = value
    return found


def _relaxed_header(name: str, value: bytes) -> bytes:
    unfolded = value.replace(b"\r\n", b"")
    return name.encode() + b":" + _WSP.sub(b" ", unfolded).strip(b" \t")


def relaxed_body(body: bytes) -> bytes:
    lines = [_WSP.sub(b" ", line).rstrip(b" ") for line in body.split(b"\r\n")]
    while lines and lines[-1] == b"":
        lines.pop()
    return b"\r\n".join(lines) + b"\r\n" if lines else b""


class DkimSigner:
    def __init__(self, *, selector: str, domain: str, key_pem: str):
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        if isinstance(key, rsa.RSAPrivateKey):
            self.algorithm = "rsa-sha256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            self.algorithm = "ed25519-sha256"
        else:
            raise ValueError("DKIM_PRIVATE_KEY must be an RSA or Ed25519 private key (PEM)")
        self.key = key
        self.selector = selector
        self.domain = domain

    def sign(self, message: bytes) -> bytes:
        """The `DKIM-Signature: ...\\r\\n` header line for `message` (CRLF line ends)."""
        head, _, body = message.partition(b"\r\n\r\n")
        fields = _headers(head)
        names = [n for n in SIGNED_HEADERS if n in fields]
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode()
        tags = (
            f"v=1; a={self.algorithm}; c=relaxed/relaxed; d={self.domain}; s={self.selector}; "
            f"t={int(time.time())}; h={':'.join(names)}; bh={body_hash}; b="
        )
        signed = b"".join(_relaxed_header(n, fields[n]) + b"\r\n" for n in names)
        signed += _relaxed_header("dkim-signature", b" " + tags.encode())
        if isinstance(self.key, rsa.RSAPrivateKey):
            raw = self.key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(self.key, ed25519.Ed25519PrivateKey)
            raw = self.key.sign(hashlib.sha256(signed).digest())
        return b"DKIM-Signature: " + tags.encode() + base64.b64encode(raw) + b"\r\n"
