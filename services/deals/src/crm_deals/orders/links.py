"""Signed, expiring public links to an order's status page (purpose "deals.order").

`<CRM_PUBLIC_URL>/public/orders/<token>`: the gateway serves the page and asks
this service's `GET /public/orders/{token}`. The token carries only the order
id; anyone holding the link sees the order's status, number and total.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from crm_deals.settings import DealsSettings
from crm_kernel.signing import BadToken, Signer

PURPOSE = "deals.order"


class OrderLinks:
    def __init__(self, settings: DealsSettings):
        self._signer = Signer.from_settings(settings, PURPOSE)
        self._base = settings.public_url.rstrip("/") + "/public/orders/"
        self._max_age = settings.order_link_days * 86_400

    def url(self, order_id: str) -> str:
        return self._base + self._signer.sign({"order_id": order_id}, max_age_seconds=self._max_age)

    def order_id(self, token: str) -> str:
        """The order a token names; BadToken when tampered with, for another purpose, or expired."""
        order_id = self._signer.verify(token).get("order_id")
        if not isinstance(order_id, str):
            raise BadToken("no order")
        return order_id


def order_links(request: Request) -> OrderLinks | None:
    """The app's link maker; None when no signing key is configured (links are then off)."""
    links: OrderLinks | None = request.app.state.order_links
    return links


OrderLinksDep = Annotated[OrderLinks | None, Depends(order_links)]
