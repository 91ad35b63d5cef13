"""Normalised addresses: the dedupe and suppression key of e-mails and phone numbers."""

from __future__ import annotations


def normalise(channel: str, address: str | None) -> str | None:
    """The comparable form of an address: lower-cased e-mail, digits-only phone with its `+`."""
    if not address:
        return None
    address = address.strip()
    if channel == "email":
        return address.casefold() or None
    digits = "".join(ch for ch in address if ch.isdigit())
    return f"+{digits}" if digits else None


def mask(channel: str, address: str) -> str:
    """An address shown on a public page: enough to recognise, not to harvest."""
    if channel == "email" and "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{address[:3]}***{address[-2:]}" if len(address) > 5 else "***"
