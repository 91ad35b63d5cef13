"""Login throttling: failed attempts counted per account and per client IP."""

from __future__ import annotations

import hashlib
import logging

from crm_gateway.ratelimit import Limiter, Quota
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

    async def _reserve(self, key: str, limit: int) -> Quota | None:
        try:
            return await self.limiter.acquire(key, limit=limit, window=self.window)
        except Exception:
            log.exception("login throttle unavailable; not throttling")
            return None

    async def _release(self, key: str) -> None:
        try:
            # At worst (the window ended meanwhile) a new window starts at -1:
            # one more attempt, never a lock-out.
            await self.limiter.hit(key, window=self.window, amount=-1)
        except Exception:
            log.exception("login throttle unavailable; attempt not released")

    async def check(self, *, email: str, ip: str) -> None:
        """Count this attempt as a failure until it succeeds; 429 if the account or IP is used up.

        Counting before the password is checked, in one atomic step per key,
        is what keeps a burst of parallel guesses from all passing a check
        made before any of them failed.
        """
        account_key = self._account_key(email)
        account = await self._reserve(account_key, self.per_account)
        if account is not None and not account.allowed:
            raise TooManyRequests(
                "Too many failed logins for this account; try again later.",
                retry_after=account.retry_after,
            )
        address = await self._reserve(self._ip_key(ip), self.per_ip)
        if address is not None and not address.allowed:
            if account is not None:
                await self._release(account_key)
            raise TooManyRequests(
                "Too many failed logins from this address; try again later.",
                retry_after=address.retry_after,
            )

    async def failed(self, *, email: str, ip: str) -> None:
        """A failed attempt: it stays counted against the account and the IP."""

    async def succeeded(self, *, email: str, ip: str) -> None:
        """A correct password clears the account's count and takes this attempt off the IP's."""
        try:
            await self.limiter.reset(self._account_key(email))
        except Exception:
            log.exception("login throttle unavailable; count not cleared")
        await self._release(self._ip_key(ip))
