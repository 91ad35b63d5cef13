"""Auth schemas: login and refresh requests, the token pair answered, sessions, login audit."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LoginRequest(BaseModel):
    # A plain string, not EmailStr: any stored address (e.g. a bootstrapped
    # admin@crm.local) must be able to log in, and a malformed one simply fails.
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(
        default=None, max_length=12, description="The authenticator code, when 2FA is on."
    )


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")


LoginOutcome = Literal["success", "failure", "throttled"]


class SessionRead(BaseModel):
    """One of the caller's live sessions (a logged-in device or browser)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    created_at: datetime
    last_refreshed_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = Field(description="Whether this is the session of the token making the call.")


class LoginEventRead(BaseModel):
    """One login attempt."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    occurred_at: datetime
    email: str
    user_id: str | None
    outcome: LoginOutcome
    ip: str | None
    user_agent: str | None


class TotpSetup(BaseModel):
    """Shown once: the secret to put into an authenticator app (or its otpauth:// URI as QR)."""

    secret: str
    otpauth_uri: str


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=12)


class TotpStatus(BaseModel):
    enabled: bool
    required: bool = Field(
        description="Whether the user's role must use two-factor authentication."
    )
