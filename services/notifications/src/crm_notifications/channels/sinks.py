"""Local dev sinks: each message a file under CRM_DATA_DIR, to read back in a demo or a test."""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from crm_notifications.channels.messages import OutgoingEmail, OutgoingSms, to_mime

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write then rename, so a reader never sees half a message."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _file_name(key: str, suffix: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{stamp}-{_SAFE.sub('_', key)[:80]}{suffix}"


class FileMailSink:
    """Writes each e-mail as an RFC 5322 `.eml` file in `<dir>`."""

    def __init__(self, directory: Path, sender: str):
        self.directory = directory
        self.sender = sender

    async def send(self, mail: OutgoingEmail) -> str:
        message = to_mime(mail, self.sender)
        path = self.directory / _file_name(mail.key, ".eml")
        await asyncio.to_thread(_write_atomically, path, bytes(message))
        return str(message["Message-ID"])


class FileSmsSink:
    """Writes each SMS as a `.json` file in `<dir>`."""

    def __init__(self, directory: Path):
        self.directory = directory

    async def send(self, sms: OutgoingSms) -> str:
        record = {
            "key": sms.key,
            "to": sms.to,
            "text": sms.text,
            "at": datetime.now(UTC).isoformat(),
        }
        path = self.directory / _file_name(sms.key, ".json")
        data = json.dumps(record, ensure_ascii=False).encode()
        await asyncio.to_thread(_write_atomically, path, data)
        return path.name
