"""Settings of the deals service."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from crm_kernel.settings import ServiceSettings

DEFAULT_LOST_REASONS = (
    "price",
    "competitor",
    "no_budget",
    "no_response",
    "not_a_fit",
    "timing",
)


class DealsSettings(ServiceSettings):
    service_name: ClassVar[str] = "deals"
    # Language of the default pipeline's names, chosen once when it is created
    # (the names stay editable afterwards).
    locale: Literal["en", "ru"] = Field(default="en", alias="CRM_LOCALE")
    # Currency of a deal created without one (ISO 4217).
    default_currency: str = Field(default="RUB", alias="CRM_DEFAULT_CURRENCY")
    # Reasons offered for a lost deal (comma-separated in the environment);
    # `POST /deals/{id}/lose` also takes free text in `comment`.
    lost_reasons_list: str = Field(default=",".join(DEFAULT_LOST_REASONS), alias="CRM_LOST_REASONS")

    # How long a client's signed order-status link works.
    order_link_days: int = Field(default=90, ge=1, le=3650, alias="CRM_ORDER_LINK_DAYS")
    # Seconds between two checks for stalled deals (one replica checks, by lease).
    stalled_check_seconds: float = Field(default=300, gt=0, alias="CRM_STALLED_CHECK_SECONDS")

    @property
    def lost_reasons(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.lost_reasons_list.split(",") if part.strip())

    @field_validator("default_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        from crm_deals.money import CURRENCIES

        value = value.upper()
        if value not in CURRENCIES:
            raise ValueError(f"CRM_DEFAULT_CURRENCY {value!r} is not an ISO 4217 code")
        return value
