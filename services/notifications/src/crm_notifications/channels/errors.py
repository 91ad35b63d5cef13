"""How a channel failed: worth retrying later, or never."""

from __future__ import annotations


class TransientError(Exception):
    """Try again later (SMTP 4xx, timeouts, a provider throttling us)."""


class PermanentError(Exception):
    """Never retry; `suppress` says the address itself is bad (SMTP 5xx on the recipient)."""

    def __init__(self, message: str, *, suppress: bool = False):
        super().__init__(message)
        self.suppress = suppress
