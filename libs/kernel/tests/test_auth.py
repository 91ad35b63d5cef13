"""Access tokens: signed and verified with a pinned algorithm; roles guard routes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI

from crm_kernel.auth import CurrentUser, Principal, Role, TokenKeys, require_roles
from crm_kernel.problems import Unauthorized, install_problem_handlers
from crm_kernel.testing import TEST_JWT_SECRET, issue_token
from crm_kernel.testing import testing_keys as dev_keys  # a bare `testing_*` name is collected

MINUTE = timedelta(minutes=1)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def valid_claims() -> dict[str, object]:
    now = int(time.time())
    return {
        "sub": "u1",
        "role": "admin",
        "iss": "crm-gateway",
        "aud": "crm",
        "iat": now,
        "exp": now + 600,
    }


def hand_made_token(header: dict[str, object], claims: dict[str, object], key: bytes) -> str:
    """A token built without PyJWT, which refuses to make the forgeries tested here."""
    signing_input = f"{b64(orjson.dumps(header))}.{b64(orjson.dumps(claims))}"
    signature = b""
    if header["alg"] == "HS256":
        signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_hs256_token_round_trips_role_teams_and_session() -> None:
    keys = dev_keys()
    token, expires = keys.issue(
        subject="u1",
        claims={"role": "head_of_sales", "team_ids": ["t1", "t2"], "sid": "s1", "email": "a@b.c"},
        lifetime=MINUTE,
    )
    principal = keys.verify(token)

    assert keys.algorithm == "HS256"
    assert principal == Principal(
        user_id="u1",
        role=Role.HEAD_OF_SALES,
        team_ids=("t1", "t2"),
        email="a@b.c",
        session_id="s1",
    )
    assert principal.scopes is None
    assert principal.claims["exp"] == int(expires.timestamp())


def test_rs256_token_is_verified_with_the_public_key_alone(rsa_pair: tuple[str, str]) -> None:
    private, public = rsa_pair
    signer = TokenKeys(private_key=private, public_key=public)
    verifier = TokenKeys(public_key=public)
    token, _ = signer.issue(
        subject="u1", claims={"role": "sales_rep", "team_ids": ["t1"], "sid": "s1"}, lifetime=MINUTE
    )

    principal = verifier.verify(token)
    assert verifier.algorithm == "RS256"
    assert (principal.user_id, principal.role, principal.team_ids, principal.session_id) == (
        "u1",
        Role.SALES_REP,
        ("t1",),
        "s1",
    )
    with pytest.raises(RuntimeError):
        verifier.issue(subject="u1", claims={"role": "admin"}, lifetime=MINUTE)


def test_expired_token_is_unauthorized() -> None:
    token = issue_token(Role.ADMIN, lifetime=-MINUTE)
    with pytest.raises(Unauthorized, match="expired"):
        dev_keys().verify(token)


def test_unsigned_alg_none_token_is_refused() -> None:
    token = hand_made_token({"alg": "none", "typ": "JWT"}, valid_claims(), b"")
    with pytest.raises(Unauthorized):
        dev_keys().verify(token)


def test_token_with_a_forged_signature_is_refused() -> None:
    token = hand_made_token({"alg": "HS256", "typ": "JWT"}, valid_claims(), b"x" * 40)
    with pytest.raises(Unauthorized):
        dev_keys().verify(token)
    genuine = hand_made_token(
        {"alg": "HS256", "typ": "JWT"}, valid_claims(), TEST_JWT_SECRET.encode()
    )
    assert dev_keys().verify(genuine).user_id == "u1"


@pytest.mark.parametrize(
    "issuer_keys",
    [
        TokenKeys(secret=TEST_JWT_SECRET, audience="another-system"),
        TokenKeys(secret=TEST_JWT_SECRET, issuer="someone-else"),
    ],
    ids=["wrong-audience", "wrong-issuer"],
)
def test_token_for_another_audience_or_from_another_issuer_is_refused(
    issuer_keys: TokenKeys,
) -> None:
    token, _ = issuer_keys.issue(subject="u1", claims={"role": "admin"}, lifetime=MINUTE)
    with pytest.raises(Unauthorized):
        dev_keys().verify(token)


def test_hs256_token_signed_with_the_public_key_is_refused_by_an_rs256_verifier(
    rsa_pair: tuple[str, str],
) -> None:
    _, public = rsa_pair
    # Key confusion: the public key is no secret, so an HS256 token "signed" with it is forged.
    forged = hand_made_token({"alg": "HS256", "typ": "JWT"}, valid_claims(), public.encode())
    with pytest.raises(Unauthorized):
        TokenKeys(public_key=public).verify(forged)


@pytest.mark.parametrize(
    "claims",
    [{"role": "emperor"}, {"team_ids": []}],
    ids=["unknown-role", "no-role"],
)
def test_token_without_a_known_role_is_refused(claims: dict[str, object]) -> None:
    token, _ = dev_keys().issue(subject="u1", claims=claims, lifetime=MINUTE)
    with pytest.raises(Unauthorized):
        dev_keys().verify(token)


def test_token_without_expiry_is_refused() -> None:
    claims = valid_claims()
    del claims["exp"]
    token = hand_made_token({"alg": "HS256", "typ": "JWT"}, claims, TEST_JWT_SECRET.encode())
    with pytest.raises(Unauthorized):
        dev_keys().verify(token)


def test_secret_shorter_than_32_characters_is_rejected() -> None:
    with pytest.raises(ValueError, match="32"):
        TokenKeys(secret="x" * 31)
    assert TokenKeys(secret="x" * 32).algorithm == "HS256"


def test_no_key_at_all_is_rejected() -> None:
    with pytest.raises(ValueError):
        TokenKeys()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.token_keys = dev_keys()
    install_problem_handlers(app)

    @app.get("/admin-only", dependencies=[Depends(require_roles(Role.ADMIN))])
    async def admin_only() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/me")
    async def me(principal: CurrentUser) -> dict[str, str]:
        return {"user_id": principal.user_id}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def bearer(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(role, user_id='u1')}"}


async def test_route_for_admins_answers_403_problem_to_another_role(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/admin-only", headers=bearer(Role.SALES_REP))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/forbidden"
    assert (await client.get("/admin-only", headers=bearer(Role.ADMIN))).json() == {"ok": "yes"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dTpw"}, {"Authorization": "Bearer not-a-token"}],
    ids=["none", "basic", "garbage"],
)
async def test_request_without_a_valid_bearer_token_is_401_problem(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "/problems/unauthorized"
    assert (await client.get("/me", headers=bearer(Role.MARKETER))).json() == {"user_id": "u1"}


def test_keys_built_from_a_private_key_alone_verify_their_own_tokens(
    rsa_pair: tuple[str, str],
) -> None:
    private, _ = rsa_pair
    keys = TokenKeys(private_key=private)
    token, _ = keys.issue(subject="u1", claims={"role": "admin"}, lifetime=MINUTE)
    assert keys.verify(token).user_id == "u1"
