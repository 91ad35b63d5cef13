"""Choose the channel implementations from the settings."""

from __future__ import annotations

from typing import Protocol

from crm_notifications.channels.messages import OutgoingEmail, OutgoingSms
from crm_notifications.channels.sinks import FileMailSink, FileSmsSink
from crm_notifications.channels.smtp import SmtpMailer
from crm_notifications.settings import NotificationsSettings


class Mailer(Protocol):
    async def send(self, mail: OutgoingEmail) -> str: ...


class SmsSender(Protocol):
    async def send(self, sms: OutgoingSms) -> str: ...


def mailer(settings: NotificationsSettings) -> Mailer:
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url, settings.mail_from)
    return FileMailSink(settings.data_dir / "mail", settings.mail_from)


def sms_sender(settings: NotificationsSettings) -> SmsSender:
    if settings.sms_url:
        # Provider adapters (Twilio-style REST) are the notifications issue's work.
        raise ValueError("SMS_URL: no SMS provider adapter yet; leave it unset for the local sink")
    return FileSmsSink(settings.data_dir / "sms")
