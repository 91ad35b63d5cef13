"""Signed tracking and unsubscribe links, and the rewriting of an e-mail's HTML to use them.

Tokens carry only ids (campaign, contact, and for clicks the target URL); the
signature makes them impossible to forge or enumerate. They do not expire: an
old e-mail's unsubscribe link must still work (public-routes.md).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from crm_kernel.settings import ServiceSettings
from crm_kernel.signing import BadToken, Signer

OPEN, CLICK, UNSUBSCRIBE = "campaigns.open", "campaigns.click", "campaigns.unsubscribe"
GATEWAY_PATHS = {OPEN: "/public/o/", CLICK: "/public/c/", UNSUBSCRIBE: "/public/u/"}

# href="http(s)://..." of an anchor (single or double quotes); other schemes stay as they are.
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


@dataclass(frozen=True)
class Recipient:
    """Who a link is for: a campaign's message to a contact on a channel."""

    campaign_id: str
    contact_id: str
    channel: str = "email"


class Links:
    """Mints the public links of one service configuration."""

    def __init__(self, settings: ServiceSettings):
        self.base = settings.public_url.rstrip("/")
        self.signers = {p: Signer.from_settings(settings, p) for p in GATEWAY_PATHS}

    def token(self, purpose: str, who: Recipient, **extra: Any) -> str:
        data = {"c": who.campaign_id, "k": who.contact_id, **extra}
        if purpose == UNSUBSCRIBE:
            data["ch"] = who.channel
        return self.signers[purpose].sign(data)

    def url(self, purpose: str, who: Recipient, **extra: Any) -> str:
        return f"{self.base}{GATEWAY_PATHS[purpose]}{self.token(purpose, who, **extra)}"

    def read(self, purpose: str, token: str) -> tuple[Recipient, dict[str, Any]]:
        """The recipient (and the rest of the payload) of a token; BadToken when not ours."""
        data = self.signers[purpose].verify(token)
        campaign_id, contact_id = data.pop("c", None), data.pop("k", None)
        channel = data.pop("ch", "email")
        if not isinstance(campaign_id, str) or not isinstance(contact_id, str):
            raise BadToken("bad payload")
        return Recipient(campaign_id, contact_id, str(channel)), data

    def track_html(self, body: str, who: Recipient, *, clicks: bool, opens: bool) -> str:
        """Links through the click tracker (not our unsubscribe link), and a 1x1 open pixel
        before `</body>`."""
        if clicks:
            unsubscribe = f"{self.base}{GATEWAY_PATHS[UNSUBSCRIBE]}"

            def rewrite(match: re.Match[str]) -> str:
                target = html.unescape(match.group(3))
                if target.startswith(unsubscribe):
                    return match.group(0)  # unsubscribing is not a click (nor an open)
                tracked = html.escape(self.url(CLICK, who, u=target), quote=True)
                return f"{match.group(1)}{match.group(2)}{tracked}{match.group(2)}"

            body = _HREF.sub(rewrite, body)
        if opens:
            pixel = (
                f'<img src="{html.escape(self.url(OPEN, who))}" width="1" height="1" '
                'alt="" style="display:none">'
            )
            if _BODY_END.search(body):
                body = _BODY_END.sub(lambda m: pixel + m.group(0), body, count=1)
            else:
                body += pixel
        return body
