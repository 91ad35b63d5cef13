"""Fast MIME rendering for sending: wire bytes assembled from encoded parts, no message object graph.

`email.message.EmailMessage` costs milliseconds per 5 KB message; here each
part is base64-encoded by C code and the headers are written directly. The
sender header is encoded once per mailer. Header values with CR or LF are
refused (no header injection); a non-ASCII recipient address falls back to
the `email` package (`to_mime`), which knows SMTPUTF8.
"""

from __future__ import annotations

import base64
import secrets
from email.policy import SMTP
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from crm_notifications.channels.messages import OutgoingEmail, to_mime

# UTF-8 bytes per RFC 2047 encoded word: 45 bytes -> 60 base64 characters, within 75.
_WORD_BYTES = 45


def _checked(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} may not contain a line break")
    return value


def encode_header(value: str) -> str:
    """ASCII as is; anything else as RFC 2047 base64 words, folded, never splitting a character."""
    if value.isascii() and len(value) < 900:
        return value
    words: list[str] = []
    chunk = b""
    for char in value:
        encoded = char.encode()
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(chunk.decode())
            chunk = b""
        chunk += encoded
    if chunk:
        words.append(chunk.decode())
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)


def _base64_lines(data: bytes) -> bytes:
    """Base64 in 76-character CRLF lines: one C call and slices (`encodebytes` loops in Python)."""
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return b"\r\n".join(lines) + b"\r\n" if lines else b""


def _part(subtype: str, text: str) -> bytes:
    """A text part: 7bit when plain short-lined ASCII, else base64 of the UTF-8."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode()
    if text.isascii() and all(len(line) <= 998 for line in lines):
        body = "\r\n".join(lines).encode()
        return head + b"Content-Transfer-Encoding: 7bit\r\n\r\n" + body + b"\r\n"
    return (
        head
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + _base64_lines("\r\n".join(lines).encode())
    )


class MimeRenderer:
    """Renders outgoing e-mail for one sender."""

    def __init__(self, sender: str):
        name, address = parseaddr(sender)
        self.sender = sender
        self.from_header = formataddr((name, address), charset="utf-8")
        self.domain = address.rpartition("@")[2] or "crm.local"

    def render(self, mail: OutgoingEmail) -> tuple[bytes, str]:
        """The message bytes (CRLF line ends) and its Message-ID."""
        if not mail.to.isascii():
            message = to_mime(mail, self.sender)
            return message.as_bytes(policy=SMTP), str(message["Message-ID"])
        message_id = make_msgid(domain=self.domain)
        headers = [
            f"From: {self.from_header}",
            f"To: {_checked('To', mail.to)}",
            f"Subject: {encode_header(_checked('Subject', mail.subject))}",
            f"Date: {formatdate(usegmt=True)}",
            f"Message-ID: {message_id}",
            "MIME-Version: 1.0",
        ]
        if mail.unsubscribe_url:
            # RFC 8058 one-click: mail clients show an unsubscribe button that POSTs here.
            url = _checked("List-Unsubscribe", mail.unsubscribe_url)
            headers.append(f"List-Unsubscribe: <{url}>")
            headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        text_part = _part("plain", mail.body_text)
        if not mail.body_html:
            head = "\r\n".join(headers).encode() + b"\r\n"
            return head + text_part, message_id
        boundary = "=_crm_" + secrets.token_hex(12)
        headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        html_part = _part("html", mail.body_html)
        delimiter = f"--{boundary}\r\n".encode()
        body = delimiter + text_part + delimiter + html_part + f"--{boundary}--\r\n".encode()
        return "\r\n".join(headers).encode() + b"\r\n\r\n" + body, message_id
