"""Choose the channel implementations from the settings.

`SMTP_URL` and `SMS_URL` may list several providers, comma-separated, tried in
order on transient failure; `CRM_SMTP_RATE_PER_SECOND` / `CRM_SMS_RATE_PER_SECOND`
cap each provider (per process; 0: no cap).
"""

from __future__ import annotations

from typing import Any, Protocol

from crm_notifications.channels.dkim import DkimSigner
from crm_notifications.channels.failover import Failover, RateLimited, unwrap
from crm_notifications.channels.messages import OutgoingEmail, OutgoingSms
from crm_notifications.channels.sinks import FileMailSink, FileSmsSink
from crm_notifications.channels.smtp import SmtpMailer
from crm_notifications.channels.twilio import TwilioSms
from crm_notifications.settings import NotificationsSettings


class Mailer(Protocol):
    async def send(self, mail: OutgoingEmail) -> str: ...


class SmsSender(Protocol):
    async def send(self, sms: OutgoingSms) -> str: ...


def _urls(setting: str) -> list[str]:
    return [url.strip() for url in setting.split(",") if url.strip()]


def _arranged(channels: list[Any], per_second: float) -> Any:
    if per_second > 0:
        channels = [RateLimited(c, per_second) for c in channels]
    return channels[0] if len(channels) == 1 else Failover(channels)


def mailer(settings: NotificationsSettings) -> Mailer:
    urls = _urls(settings.smtp_url)
    if not urls:
        return FileMailSink(settings.data_dir / "mail", settings.mail_from)
    dkim = dkim_signer(settings)
    smtp = [
        SmtpMailer(
            url,
            settings.mail_from,
            bounce_domain=settings.bounce_domain,
            dkim=dkim,
            pool_size=settings.smtp_pool_size,
        )
        for url in urls
    ]
    arranged: Mailer = _arranged(smtp, settings.smtp_rate_per_second)
    return arranged


def dkim_signer(settings: NotificationsSettings) -> DkimSigner | None:
    key = settings.dkim_key_pem()
    if not (settings.dkim_selector and settings.dkim_domain and key):
        return None
    return DkimSigner(selector=settings.dkim_selector, domain=settings.dkim_domain, key_pem=key)


def _sms_provider(url: str, settings: NotificationsSettings) -> TwilioSms:
    if url.startswith("twilio://"):
        return TwilioSms(url, status_callback=settings.sms_callback_url("twilio"))
    raise ValueError("SMS_URL: unknown provider; supported: twilio://SID:TOKEN@host?from=+1...")


def sms_sender(settings: NotificationsSettings) -> SmsSender:
    urls = _urls(settings.sms_url)
    if not urls:
        return FileSmsSink(settings.data_dir / "sms")
    providers = [_sms_provider(url, settings) for url in urls]
    arranged: SmsSender = _arranged(providers, settings.sms_rate_per_second)
    return arranged


def twilio_tokens(sender: SmsSender) -> list[str]:
    """Auth tokens of the Twilio-style providers in use (a callback may come from any)."""
    return [p.auth_token for p in unwrap(sender) if isinstance(p, TwilioSms) and p.auth_token]
