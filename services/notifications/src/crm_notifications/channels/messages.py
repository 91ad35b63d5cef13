"""Outgoing messages as the channels take them."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


@dataclass(frozen=True)
class OutgoingEmail:
    key: str
    to: str
    subject: str
    body_text: str
    body_html: str | None = None
    unsubscribe_url: str | None = None
    # Names the message in its VERP bounce address.
    notification_id: str | None = None


@dataclass(frozen=True)
class OutgoingSms:
    key: str
    to: str
    text: str


def to_mime(mail: OutgoingEmail, sender: str) -> EmailMessage:
    """The MIME message: a text part and, when given, an HTML alternative.

    The default policy refuses CR/LF in header values, so a subject or address
    cannot smuggle in headers.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or "crm.local")
    if mail.unsubscribe_url:
        # RFC 8058 one-click: mail clients show an unsubscribe button that POSTs here.
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(mail.body_text)
    if mail.body_html:
        message.add_alternative(mail.body_html, subtype="html")
    return message
