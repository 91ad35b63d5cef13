"""Lead API shapes: LeadCreate (and the public form's PublicLead) in, LeadRead out; lead rules."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

from crm_contacts.contacts.schemas import Custom, Name, Phone, Tag, Tags

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Message = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
Utm = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
FormKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,64}$")]
Source = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,50}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class RuleKind(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_OPEN_LEADS = "least_open_leads"
    BY_TAG = "by_tag"


class TagRoute(BaseModel):
    """Leads carrying `tag` (a tag or the territory) go to `owner_id`."""

    model_config = ConfigDict(extra="forbid")

    tag: Tag
    owner_id: uuid.UUID


class LeadRuleFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_id: uuid.UUID | None = None
    routes: Annotated[list[TagRoute], Field(max_length=200)] = Field(default_factory=list)
    form_key: FormKey | None = None
    pipeline_id: uuid.UUID | None = None
    default_tags: Tags = Field(default_factory=list)
    is_active: bool = True


class LeadRuleCreate(LeadRuleFields):
    """round_robin and least_open_leads share among `team_id`'s active sales reps; by_tag
    follows `routes`. The fallback owner gets what no one else can take."""

    name: Text200
    kind: RuleKind
    fallback_owner_id: uuid.UUID

    @model_validator(mode="after")
    def _complete(self) -> LeadRuleCreate:
        if self.kind is RuleKind.BY_TAG and not self.routes:
            raise ValueError("a by_tag rule needs routes")
        if self.kind is not RuleKind.BY_TAG and self.team_id is None:
            raise ValueError(f"a {self.kind} rule needs team_id")
        return self


class LeadRuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text200 | None = None
    team_id: uuid.UUID | None = None
    routes: Annotated[list[TagRoute], Field(max_length=200)] | None = None
    fallback_owner_id: uuid.UUID | None = None
    form_key: FormKey | None = None
    pipeline_id: uuid.UUID | None = None
    default_tags: Tags | None = None
    is_active: bool | None = None
    version: int | None = None


class LeadRuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: RuleKind
    team_id: uuid.UUID | None
    routes: list[TagRoute]
    fallback_owner_id: uuid.UUID
    form_key: str | None
    pipeline_id: uuid.UUID | None
    default_tags: list[str]
    is_active: bool
    leads_received: int
    last_owner_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class PublicLead(BaseModel):
    """What a web form sends (public-routes.md); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    first_name: Name | None = None
    last_name: Name | None = None
    email: EmailStr | None = None
    phone: Phone | None = None
    company: Text200 | None = None
    message: Message | None = None
    utm_source: Utm | None = None
    utm_medium: Utm | None = None
    utm_campaign: Utm | None = None
    utm_term: Utm | None = None
    utm_content: Utm | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Any:
        if self.email is None and self.phone is None:
            raise ValueError("an e-mail or a phone is required")
        return self


class LeadCreate(PublicLead):
    """A lead from an integration: the form's fields plus routing and deal hints."""

    model_config = ConfigDict(extra="forbid")

    source: Source = "api"
    rule_id: uuid.UUID | None = None
    title: Text200 | None = None
    amount: Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)] | None = None
    currency: Currency | None = None
    tags: Tags = Field(default_factory=list)
    territory: Tag | None = None
    # Contact custom field values, checked like POST /contacts (required ones included).
    custom: Custom = Field(default_factory=dict)


class LeadUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Annotated[str, StringConstraints(pattern=r"^(open|closed)$")]


class LeadRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    contact_id: uuid.UUID
    is_new_contact: bool
    owner_id: uuid.UUID
    status: str
    source: str
    rule_id: uuid.UUID | None
    form_key: str | None
    pipeline_id: uuid.UUID | None
    title: str | None
    message: str | None
    company_name: str | None
    amount: str | None
    currency: str | None
    utm: dict[str, str]
    received_at: datetime


class Received(BaseModel):
    received: bool = True
