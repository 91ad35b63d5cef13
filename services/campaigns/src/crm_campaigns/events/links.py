"""Signed registration links: the token names the event and the contact, nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from crm_kernel.settings import ServiceSettings
from crm_kernel.signing import BadToken, Signer

PURPOSE = "campaigns.event"
# The gateway's public page for a token (public-routes.md).
GATEWAY_PATH = "/public/e/"


@dataclass(frozen=True)
class Invitation:
    event_id: str
    contact_id: str


def signer(settings: ServiceSettings) -> Signer:
    return Signer.from_settings(settings, PURPOSE)


def registration_token(settings: ServiceSettings, event_id: str, contact_id: str) -> str:
    """A token for one contact's registration; it does not expire (the event's date does)."""
    return signer(settings).sign({"e": event_id, "c": contact_id})


def registration_url(settings: ServiceSettings, event_id: str, contact_id: str) -> str:
    """The public link an invitation carries (`event.registration_url` in a template)."""
    token = registration_token(settings, event_id, contact_id)
    return f"{settings.public_url.rstrip('/')}{GATEWAY_PATH}{token}"


def read_token(settings: ServiceSettings, token: str) -> Invitation:
    """The invitation in a token, or BadToken (tampered, another purpose, malformed)."""
    data = signer(settings).verify(token)
    event_id, contact_id = data.get("e"), data.get("c")
    if not isinstance(event_id, str) or not isinstance(contact_id, str):
        raise BadToken("bad payload")
    return Invitation(event_id, contact_id)
