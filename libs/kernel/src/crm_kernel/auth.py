"""The principal: who is asking. Services verify the gateway's JWT themselves."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from crm_kernel.problems import Forbidden, Unauthorized


class Role(enum.StrEnum):
    ADMIN = "admin"
    HEAD_OF_SALES = "head_of_sales"
    SALES_REP = "sales_rep"
    MARKETER = "marketer"


@dataclass(frozen=True)
class Principal:
    """The caller, as the access token says: user, role, teams, session."""

    user_id: str
    role: Role
    team_ids: tuple[str, ...] = ()
    email: str | None = None
    session_id: str | None = None
    # None: everything the role allows; otherwise an API key's scopes.
    scopes: frozenset[str] | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def sees_every_owner(self) -> bool:
        """Admins and marketers read the whole base; reps and heads of sales a part of it."""
        return self.role in (Role.ADMIN, Role.MARKETER)


class TokenKeys:
    """Signing and verifying keys, with the algorithm pinned: HS256 (dev) or RS256."""

    def __init__(
        self,
        *,
        secret: str = "",
        private_key: str = "",
        public_key: str = "",
        issuer: str = "crm-gateway",
        audience: str = "crm",
    ):
        if public_key or private_key:
            self.algorithm = "RS256"
            self._sign_key: Any = private_key
            self._verify_key: Any = public_key or _public_key_of(private_key)
        elif secret:
            if len(secret) < 32:
                raise ValueError("CRM_JWT_SECRET must be at least 32 characters")
            self.algorithm = "HS256"
            self._sign_key = self._verify_key = secret
        else:
            raise ValueError("set CRM_JWT_SECRET (HS256) or CRM_JWT_PUBLIC_KEY (RS256)")
        self.issuer = issuer
        self.audience = audience

    def issue(
        self, *, subject: str, claims: Mapping[str, Any], lifetime: timedelta
    ) -> tuple[str, datetime]:
        """A signed token and its expiry (only the gateway holds a signing key)."""
        if not self._sign_key:
            raise RuntimeError("this process has no signing key")
        now = datetime.now(UTC)
        expires = now + lifetime
        payload = {
            **claims,
            "sub": subject,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": expires,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(payload, self._sign_key, algorithm=self.algorithm), expires

    def verify(self, token: str) -> Principal:
        """The principal a token names; Unauthorized if it is forged, expired or not for us."""
        try:
            claims = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
                leeway=5,
            )
            role = Role(claims["role"])
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired.") from exc
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise Unauthorized("The access token is not valid.") from exc
        scopes = claims.get("scopes")
        return Principal(
            user_id=str(claims["sub"]),
            role=role,
            team_ids=tuple(claims.get("team_ids") or ()),
            email=claims.get("email"),
            session_id=claims.get("sid"),
            scopes=frozenset(scopes) if scopes is not None else None,
            claims=claims,
        )


def _public_key_of(private_key: str) -> str:
    """The PEM public key of an RSA private key (the gateway may be given only the latter)."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(private_key.encode(), password=None)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.")
    return token.strip()


def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the verified caller (the app's `state.token_keys` verifies)."""
    return request.app.state.token_keys.verify(bearer_token(request))


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only these roles through (403 for the others)."""

    def check(principal: CurrentUser) -> Principal:
        if principal.role not in roles:
            raise Forbidden("Your role may not do this.")
        return principal

    return check


AdminUser = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
