"""Security headers, CORS, request body limits and token checks at the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import httpx
import jwt
import pytest

from crm_gateway.settings import GatewaySettings
from crm_gateway.testing import ADMIN_EMAIL, ADMIN_PASSWORD, Api, Echo, running_gateway
from crm_kernel.auth import TokenKeys
from crm_kernel.testing import TEST_JWT_SECRET

MakeSettings = Callable[..., GatewaySettings]
PROBLEM = "application/problem+json"
APP_ORIGIN = "https://app.example.com"


def assert_security_headers(headers: httpx.Headers) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]


async def test_every_answer_carries_the_security_headers(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=echo.url)) as api:
        headers = await api.admin_headers()
        answers = [
            await api.http.get("/api/v1/auth/me", headers=headers),
            await api.http.get("/api/v1/contacts/c1", headers=headers),
            await api.http.get("/api/v1/auth/me"),
            await api.http.get("/api/v1/spaceships", headers=headers),
            await api.http.get("/healthz"),
        ]
    assert [a.status_code for a in answers] == [200, 200, 401, 404, 200]
    for answer in answers:
        assert_security_headers(answer.headers)
        # Plain HTTP deployment: no HSTS.
        assert "strict-transport-security" not in answer.headers


async def test_hsts_is_sent_when_the_public_url_is_https(make_settings: MakeSettings) -> None:
    settings = make_settings(CRM_PUBLIC_URL="https://crm.example.com")
    async with running_gateway(settings) as api:
        response = await api.http.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_no_origin_is_allowed_by_default(api: Api) -> None:
    response = await api.http.options(
        "/api/v1/contacts",
        headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers


async def test_listed_origins_may_call_the_api_from_a_browser(
    make_settings: MakeSettings, echo: Echo
) -> None:
    settings = make_settings(
        CRM_CORS_ORIGINS=f"{APP_ORIGIN}, https://admin.example.com", CONTACTS_URL=echo.url
    )
    async with running_gateway(settings) as api:
        preflight = await api.http.options(
            "/api/v1/contacts",
            headers={
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
        headers = await api.admin_headers()
        call = await api.http.get("/api/v1/contacts", headers={**headers, "Origin": APP_ORIGIN})
        stranger = await api.http.get(
            "/api/v1/contacts", headers={**headers, "Origin": "https://evil.example.com"}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
    assert call.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = call.headers["access-control-expose-headers"].lower()
    for name in ("ratelimit-remaining", "retry-after", "etag", "location", "idempotent-replayed"):
        assert name in exposed
    assert "access-control-allow-origin" not in stranger.headers


async def chunks(size: int, chunk: int = 256) -> AsyncIterator[bytes]:
    for start in range(0, size, chunk):
        yield b"x" * min(chunk, size - start)


async def test_bodies_over_the_limit_are_refused_with_413_before_reaching_a_service(
    make_settings: MakeSettings, echo: Echo
) -> None:
    settings = make_settings(CRM_MAX_BODY_BYTES=1000, CONTACTS_URL=echo.url)
    async with running_gateway(settings) as api:
        headers = {**await api.admin_headers(), "Content-Type": "text/csv"}
        fits = await api.http.post("/api/v1/imports", content=b"x" * 1000, headers=headers)
        declared = await api.http.post("/api/v1/imports", content=b"x" * 1001, headers=headers)
        # No Content-Length: counted while it streams in, cut off at the limit.
        streamed = await api.http.post("/api/v1/imports", content=chunks(5000), headers=headers)
        own_route = await api.http.post(
            "/api/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "pad": "x" * 2000},
        )
    assert fits.status_code == 200
    for response in (declared, streamed, own_route):
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "/problems/payload-too-large"
        assert_security_headers(response.headers)
    assert [len(r["body"]) for r in echo.received] == [1000]


def _resigned(
    token: str, *, key: str = TEST_JWT_SECRET, algorithm: str = "HS256", **claims: object
) -> str:
    payload = {**jwt.decode(token, options={"verify_signature": False}), **claims}
    return jwt.encode(payload, key, algorithm=algorithm)


def _alg_none(token: str) -> str:
    """The same claims with `alg: none` and no signature."""
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    return f"{header}.{token.split('.')[1]}."


async def test_forged_expired_alg_none_and_wrong_audience_tokens_are_refused_with_401(
    make_settings: MakeSettings, echo: Echo
) -> None:
    async with running_gateway(make_settings(CONTACTS_URL=echo.url)) as api:
        await api.create_user("rep@example.com")
        good = (await api.login("rep@example.com"))["access_token"]
        header, _payload, signature = good.split(".")
        past = {"exp": 1_700_000_000, "iat": 1_699_999_000, "nbf": 1_699_999_000}
        bad = {
            "forged": _resigned(good, key="another-secret-of-at-least-32-chars!"),
            "expired": _resigned(good, **past),
            "alg_none": _alg_none(good),
            "wrong_audience": _resigned(good, aud="another-system"),
            "wrong_issuer": _resigned(good, iss="someone-else"),
            # A claim changed without the key: the signature no longer matches.
            "role_raised": ".".join(
                (header, _resigned(good, role="admin").split(".")[1], signature)
            ),
        }
        assert (await api.http.get("/api/v1/contacts", headers=api.bearer(good))).status_code == 200
        answers = {}
        for name, token in bad.items():
            own = await api.http.get("/api/v1/auth/me", headers=api.bearer(token))
            forwarded = await api.http.get("/api/v1/contacts", headers=api.bearer(token))
            answers[name] = (own, forwarded)
    for name, responses in answers.items():
        for response in responses:
            assert response.status_code == 401, name
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["www-authenticate"] == "Bearer"
    # Only the good token's request reached the service.
    assert len(echo.received) == 1


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_tokens_of_the_gateway_are_pinned_to_one_algorithm() -> None:
    keys = TokenKeys(secret=TEST_JWT_SECRET)
    token, _ = keys.issue(subject="u1", claims={"role": "admin"}, lifetime=timedelta(minutes=1))
    # The right secret, another HMAC algorithm: still refused.
    hs512 = _resigned(token, algorithm="HS512")
    with pytest.raises(Exception, match="not valid"):
        keys.verify(hs512)
