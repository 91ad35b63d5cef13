"""E-mail over SMTP with aiosmtplib, configured by `SMTP_URL`."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import aiosmtplib

from crm_notifications.channels.messages import OutgoingEmail, to_mime


class SmtpMailer:
    """`smtp://[user:pass@]host:port` (STARTTLS when offered) or `smtps://` (TLS from the start)."""

    def __init__(self, url: str, sender: str, timeout: float = 30.0):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://[user:pass@]host:port or smtps://...")
        self.hostname = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.use_tls = parts.scheme == "smtps"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout

    async def send(self, mail: OutgoingEmail) -> str:
        message = to_mime(mail, self.sender)
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            use_tls=self.use_tls,
            username=self.username,
            password=self.password,
            timeout=self.timeout,
        )
        return str(message["Message-ID"])
