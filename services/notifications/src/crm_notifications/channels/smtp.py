"""E-mail over SMTP with aiosmtplib, configured by `SMTP_URL`, over a pool of reused connections."""

from __future__ import annotations

import asyncio
import contextlib
import re
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

from crm_notifications.channels.dkim import DkimSigner
from crm_notifications.channels.errors import PermanentError, TransientError
from crm_notifications.channels.messages import OutgoingEmail
from crm_notifications.channels.mime import MimeRenderer

# A bare ASCII address, safe to put in MAIL FROM / RCPT TO as is; anything else
# (a display name, SMTPUTF8) goes through aiosmtplib's own address parsing.
_PLAIN_ADDRESS = re.compile(r"[!#-'*+\-/-9=?A-Z^-~.]+@[A-Za-z0-9.\-]+")


class SmtpMailer:
    """`smtp://[user:pass@]host:port` (STARTTLS when offered) or `smtps://` (TLS from the start).

    Connections are opened on demand, kept and reused (up to `pool_size` at
    once); one that failed is dropped and a new one opened for the next message.
    A message to a plain address is one MAIL, RCPT and DATA through aiosmtplib's
    command layer, without its per-message address parsing (a third of the CPU
    of a send).
    With a `bounce_domain`, the envelope sender is `bounce+<notification id>@<domain>`
    (VERP), so a bounce names the message it is about. With `dkim`, every message
    is signed.
    """

    def __init__(
        self,
        url: str,
        sender: str,
        *,
        timeout: float = 30.0,
        pool_size: int = 20,
        bounce_domain: str = "",
        dkim: DkimSigner | None = None,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://[user:pass@]host:port or smtps://...")
        self.hostname = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.use_tls = parts.scheme == "smtps"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.sender_address = parseaddr(sender)[1]
        self.bounce_domain = bounce_domain
        self.dkim = dkim
        self.renderer = MimeRenderer(sender)
        self.timeout = timeout
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(pool_size)

    def return_path(self, mail: OutgoingEmail) -> str:
        if self.bounce_domain and mail.notification_id:
            return f"bounce+{mail.notification_id}@{self.bounce_domain}"
        return self.sender_address

    def render(self, mail: OutgoingEmail) -> tuple[bytes, str]:
        """The wire bytes (CRLF, DKIM-signed when configured) and the Message-ID."""
        data, message_id = self.renderer.render(mail)
        if self.dkim is not None:
            data = self.dkim.sign(data) + data
        return data, message_id

    async def _connection(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:
                return client
        client = aiosmtplib.SMTP(
            hostname=self.hostname, port=self.port, use_tls=self.use_tls, timeout=self.timeout
        )
        await client.connect()
        if self.username:
            await client.login(self.username, self.password or "")
        return client

    async def send(self, mail: OutgoingEmail) -> str:
        try:
            data, message_id = self.render(mail)
        except ValueError as exc:  # a line break in a header: never sendable
            raise PermanentError(f"cannot render the message: {exc}") from exc
        async with self._slots:
            client = None
            try:
                client = await self._connection()
                await self._transaction(client, self.return_path(mail), mail.to, data)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._keep(client)
                codes = [r.code for r in exc.recipients]
                if codes and all(code >= 500 for code in codes):
                    raise PermanentError(
                        f"recipient refused: {exc.recipients[0]}", suppress=True
                    ) from exc
                raise TransientError(f"recipient deferred: {exc.recipients[0]}") from exc
            except aiosmtplib.SMTPResponseException as exc:
                await self._drop(client)
                if exc.code >= 500:
                    raise PermanentError(
                        f"SMTP {exc.code} {exc.message}", suppress=exc.code in (550, 551, 553)
                    ) from exc
                raise TransientError(f"SMTP {exc.code} {exc.message}") from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._drop(client)
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            self._keep(client)
        return message_id

    async def _transaction(
        self, client: aiosmtplib.SMTP, sender: str, recipient: str, data: bytes
    ) -> None:
        if not (_PLAIN_ADDRESS.fullmatch(sender) and _PLAIN_ADDRESS.fullmatch(recipient)):
            await client.sendmail(sender, [recipient], data)
            return
        reply = await client.execute_command(b"MAIL", b"FROM:<" + sender.encode() + b">")
        if reply.code != 250:
            raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender)
        reply = await client.execute_command(b"RCPT", b"TO:<" + recipient.encode() + b">")
        if reply.code not in (250, 251):
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.rset()  # the connection stays usable for the next message
            refused = aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
            raise aiosmtplib.SMTPRecipientsRefused([refused])
        await client.data(data)

    def _keep(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None and client.is_connected:
            self._idle.append(client)

    async def _drop(self, client: aiosmtplib.SMTP | None) -> None:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            with contextlib.suppress(Exception):
                await client.quit()
