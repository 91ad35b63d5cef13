"""Bounce reports: RFC 3464 delivery status notifications and RFC 5965 complaint (ARF) reports.

Which message a report is about: the VERP address it was sent back to
(`bounce+<notification id>@...` in To / Delivered-To / X-Original-To), else the
Message-ID of the returned original (its headers travel with the report).
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32

_VERP = re.compile(r"bounce\+([0-9a-fA-F-]{36})@", re.IGNORECASE)
_STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}")


@dataclass(frozen=True)
class BounceReport:
    notification_id: str | None
    message_id: str | None
    permanent: bool
    complaint: bool
    detail: str


class NotAReport(ValueError):
    """The body is not a delivery status or complaint report."""


def _verp_id(message: Message) -> str | None:
    for header in ("To", "Delivered-To", "X-Original-To", "Envelope-To"):
        for value in message.get_all(header) or []:
            found = _VERP.search(str(value))
            if found:
                return found.group(1).lower()
    return None


def _original_message_id(message: Message) -> str | None:
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            payload = part.get_payload()
            original = (
                payload[0]
                if isinstance(payload, list) and payload and isinstance(payload[0], Message)
                else email.message_from_string(str(payload))
            )
            if original.get("Message-ID"):
                return str(original["Message-ID"]).strip()
    return None


def _status_blocks(message: Message) -> list[Message]:
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                return [p for p in payload if isinstance(p, Message)]
    return []


def _complaint(message: Message) -> str | None:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            fields = payload[0] if isinstance(payload, list) and payload else None
            kind = fields.get("Feedback-Type", "abuse") if isinstance(fields, Message) else "abuse"
            return f"complaint: {kind}"
    return None


def parse(raw: bytes) -> BounceReport | None:
    """What a bounce or complaint report says; None for a delay notice; NotAReport for anything else."""
    message = email.message_from_bytes(raw, policy=compat32)
    notification_id, message_id = _verp_id(message), _original_message_id(message)
    complaint = _complaint(message)
    if complaint:
        return BounceReport(notification_id, message_id, True, True, complaint)
    blocks = _status_blocks(message)
    if not blocks:
        raise NotAReport("neither a message/delivery-status nor a feedback report")
    for block in blocks:
        action = str(block.get("Action", "")).strip().lower()
        status = _STATUS.match(str(block.get("Status", "")).strip())
        if action != "failed" or not status:
            continue  # per-message fields, or a delay / relay notice
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        detail = f"bounced {status.group(0)}" + (f": {diagnostic}" if diagnostic else "")
        return BounceReport(
            notification_id, message_id, status.group(1) == "5", False, detail[:1000]
        )
    return None
