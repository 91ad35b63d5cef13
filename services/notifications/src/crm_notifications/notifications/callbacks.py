"""Public callbacks (reached through the gateway's /public routes, no login): SMS status, bounces.

The path carries a secret (`CRM_SMS_CALLBACK_SECRET` / `CRM_EMAIL_CALLBACK_SECRET`,
derived from the signing key when unset); a wrong one is a 404 like any
unknown path. Twilio-style callbacks are also checked against
`X-Twilio-Signature` (auth token from `SMS_URL`). Reports about unknown
messages are accepted and ignored, so a caller learns nothing from the answer.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from crm_kernel.app import DatabaseDep
from crm_kernel.problems import Forbidden, NotFound, Unprocessable
from crm_notifications.channels import dsn
from crm_notifications.channels.select import twilio_tokens
from crm_notifications.channels.twilio import verify_signature
from crm_notifications.notifications.feedback import Report, apply_report
from crm_notifications.settings import NotificationsSettings

router = APIRouter(prefix="/public/callbacks", tags=["public callbacks"])

MAX_REPORT_BYTES = 1_000_000
# Twilio error codes for a number that will never take a message: suppress it.
DEAD_NUMBER_ERRORS = {"30005", "30006"}


def _check_secret(settings: NotificationsSettings, kind: str, given: str) -> None:
    if not hmac.compare_digest(settings.callback_secret(kind).encode(), given.encode()):
        raise NotFound("Not found.")


@router.post("/sms/{provider}/{secret}", status_code=status.HTTP_204_NO_CONTENT)
async def sms_status(
    provider: str,
    secret: str,
    request: Request,
    db: DatabaseDep,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> Response:
    settings: NotificationsSettings = request.app.state.settings
    _check_secret(settings, "sms", secret)
    if provider != "twilio":
        raise NotFound("Not found.")
    form = {k: str(v) for k, v in (await request.form()).items()}
    tokens = twilio_tokens(request.app.state.sms_sender)
    if tokens:
        url = settings.sms_callback_url("twilio")
        signed = x_twilio_signature or ""
        if not any(verify_signature(token, url, form, signed) for token in tokens):
            raise Forbidden("The request signature does not verify.")
    sid, state = form.get("MessageSid") or form.get("SmsSid"), form.get("MessageStatus", "")
    if not sid:
        raise Unprocessable(
            "MessageSid is required.",
            errors=[{"field": "MessageSid", "location": "body", "message": "required"}],
        )
    report = _sms_report(state, form.get("ErrorCode"))
    if report is not None:
        await apply_report(db, report, provider_id=sid)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _sms_report(state: str, error_code: str | None) -> Report | None:
    if state == "delivered":
        return Report("delivered")
    if state in ("undelivered", "failed"):
        return Report(
            "failed",
            error=f"provider: {state}" + (f" (error {error_code})" if error_code else ""),
            suppress=error_code in DEAD_NUMBER_ERRORS,
        )
    return None  # queued, sending, sent: nothing new for us


@router.post("/email/{secret}", status_code=status.HTTP_204_NO_CONTENT)
async def email_report(secret: str, request: Request, db: DatabaseDep) -> Response:
    """A bounce (RFC 3464 DSN) or complaint (ARF) report, as the raw message."""
    settings: NotificationsSettings = request.app.state.settings
    _check_secret(settings, "email", secret)
    raw = await request.body()
    if len(raw) > MAX_REPORT_BYTES:
        raise Unprocessable("The report is too large.")
    try:
        parsed = dsn.parse(raw)
    except dsn.NotAReport as exc:
        raise Unprocessable(
            f"Not a bounce report: {exc}.",
            errors=[{"field": "body", "location": "body", "message": str(exc)}],
        ) from exc
    if parsed is not None:
        report = Report(
            "bounced",
            error=parsed.detail,
            permanent=parsed.permanent,
            complaint=parsed.complaint,
            suppress=parsed.permanent or parsed.complaint,
        )
        found = False
        if parsed.notification_id:
            found = await apply_report(db, report, notification_id=parsed.notification_id)
        if not found and parsed.message_id:
            await apply_report(db, report, provider_id=parsed.message_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
