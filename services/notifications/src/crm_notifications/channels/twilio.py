"""SMS through a Twilio-style REST API, configured by `SMS_URL`.

`twilio://ACCOUNT_SID:AUTH_TOKEN@host:port?from=+15550001111` (host optional:
api.twilio.com). HTTPS, except to a loopback host (a local test server).
Messages are created with a form-encoded POST to
`/2010-04-01/Accounts/{sid}/Messages.json` under basic auth, asking for
status callbacks at the public route; `X-Twilio-Signature` on a callback is
HMAC-SHA1 with the auth token over the URL and the sorted form fields.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import aiohttp

from crm_notifications.channels.errors import PermanentError, TransientError
from crm_notifications.channels.messages import OutgoingSms

DEFAULT_HOST = "api.twilio.com"
# Provider error codes that mean the number itself will never take a message.
DEAD_NUMBER_CODES = {21211, 21610, 21614}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _query(raw: str) -> dict[str, str]:
    """Query fields without turning `+` into a space (a phone number starts with one)."""
    fields: dict[str, str] = {}
    for part in raw.split("&"):
        name, _, value = part.partition("=")
        if name:
            fields[unquote(name)] = unquote(value)
    return fields


class TwilioSms:
    name = "twilio"

    def __init__(self, url: str, *, status_callback: str | None = None, timeout: float = 15.0):
        parts = urlsplit(url)
        if parts.scheme != "twilio" or not parts.username or not parts.password:
            raise ValueError(
                "SMS_URL must look like twilio://ACCOUNT_SID:AUTH_TOKEN@host?from=+1..."
            )
        self.account_sid = unquote(parts.username)
        self.auth_token = unquote(parts.password)
        host = parts.hostname or DEFAULT_HOST
        scheme = "http" if _is_loopback(host) else "https"
        port = f":{parts.port}" if parts.port else ""
        self.endpoint = (
            f"{scheme}://{host}{port}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        )
        query = _query(parts.query)
        self.sender = query.get("from", "")
        self.messaging_service = query.get("messaging_service_sid", "")
        if not self.sender and not self.messaging_service:
            raise ValueError("SMS_URL needs ?from=+<sender number> (or messaging_service_sid=)")
        self.status_callback = status_callback
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                headers={"Authorization": self._basic_auth()},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._http

    def _basic_auth(self) -> str:
        pair = f"{self.account_sid}:{self.auth_token}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    async def send(self, sms: OutgoingSms) -> str:
        form = {"To": sms.to, "Body": sms.text}
        if self.messaging_service:
            form["MessagingServiceSid"] = self.messaging_service
        else:
            form["From"] = self.sender
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        try:
            async with self._session().post(self.endpoint, data=form) as answer:
                status = answer.status
                body = await answer.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TransientError(f"SMS provider: {type(exc).__name__}: {exc}") from exc
        body = body if isinstance(body, dict) else {}
        if status in (200, 201) and body.get("sid"):
            return str(body["sid"])
        detail = f"SMS provider {status}: {body.get('code')} {body.get('message')}"
        if status in (401, 403, 429) or status >= 500:
            raise TransientError(detail)
        code = body.get("code")
        raise PermanentError(detail, suppress=isinstance(code, int) and code in DEAD_NUMBER_CODES)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


def signature(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    """Twilio's request signature: base64 HMAC-SHA1 of the URL and the sorted fields."""
    data = url + "".join(f"{name}{form[name]}" for name in sorted(form))
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def verify_signature(auth_token: str, url: str, form: Mapping[str, str], given: str) -> bool:
    return hmac.compare_digest(signature(auth_token, url, form), given)
