"""SSRF guard: a webhook may not reach loopback, private, link-local or otherwise internal addresses.

Checked when a subscription is saved and again at every delivery, after DNS
resolution; the HTTP client resolves through `GuardedResolver`, so the address
it connects to is one that passed the check (no DNS rebinding in between).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver


class TargetRefused(Exception):
    """The URL is malformed or points at an address webhooks may not reach."""


def is_internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the URL must be absolute http(s)")
    if parts.username or parts.password:
        raise TargetRefused("the URL may not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused("the URL's port is not valid") from exc
    return parts.hostname, port


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host resolves (in any of its addresses) to an internal address."""
    host, port = _host_and_port(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"{host} does not resolve") from exc
    for info in infos:
        if is_internal(str(info[4][0])):
            raise TargetRefused(f"{host} resolves to an internal address")


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver that refuses internal addresses unless they are allowed."""

    def __init__(self, *, allow_private: bool):
        self.allow_private = allow_private
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self.allow_private and any(is_internal(r["host"]) for r in results):
            raise TargetRefused(f"{host} resolves to an internal address")
        return results

    async def close(self) -> None:
        await self._inner.close()
