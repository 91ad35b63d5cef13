"""Login throttling: failed attempts counted per account and per client IP."""

from __future__ import annotations

import hashlib
import logging

from crm_gateway.ratelimit import Limiter, Usage
from crm_kernel.problems import TooManyRequests

log = logging.getLogger(__name__)


class LoginThrottle:
    """Refuses logins (even correct ones) while an account or IP has too many recent failures.

    Each account has its own counter, so an attacker hammering one account
    never locks out another; the per-IP counter caps guessing across accounts.
    If the counters' store (Redis) fails, logins go on unthrottled and the
    failure is logged: the password still guards the account, and an outage
    of the limiter must not lock everyone out.
    """

    def __init__(self, limiter: Limiter, *, per_account: int, per_ip: int, window_seconds: float):
        self.limiter = limiter
        self.per_account = per_account
        self.per_ip = per_ip
        self.window = window_seconds

    @staticmethod
    def _account_key(email: str) -> str:
        # Hashed so the limiter's store (Redis) holds no e-mail addresses.
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return f"login:account:{digest}"

    @staticmethod
    def _ip_key(ip: str) -> str:
        return f"login:ip:{ip}"

    async def _peek(self, key: str) -> Usage:
        try:
            return await self.limiter.peek(key)
        except Exception:
            log.exception("login throttle unavailable; not throttling")
            return Usage(0, 0.0)

    async def check(self, *, email: str, ip: str) -> None:
        """429 with Retry-After if the account or the IP is over its limit."""
        account = await self._peek(self._account_key(email))
        if account.exceeds(self.per_account):
            raise TooManyRequests(
                "Too many failed logins for this account; try again later.",
                retry_after=account.retry_after,
            )
        address = await self._peek(self._ip_key(ip))
        if address.exceeds(self.per_ip):
            raise TooManyRequests(
                "Too many failed logins from this address; try again later.",
                retry_after=address.retry_after,
            )

    async def failed(self, *, email: str, ip: str) -> None:
        """Count a failed attempt against both the account and the IP."""
        try:
            await self.limiter.hit(self._account_key(email), window=self.window)
            await self.limiter.hit(self._ip_key(ip), window=self.window)
        except Exception:
            log.exception("login throttle unavailable; failure not counted")

    async def succeeded(self, *, email: str) -> None:
        """A correct password clears the account's count (not the IP's)."""
        try:
            await self.limiter.reset(self._account_key(email))
        except Exception:
            log.exception("login throttle unavailable; count not cleared")
