"""`Idempotency-Key` on POST and PATCH: run once per caller and key, replay the stored answer."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_gateway.caller import VerifiedTokens, caller_id, header, verified_caller
from crm_gateway.idempotency.store import Answer, IdempotencyStore
from crm_kernel.problems import problem

log = logging.getLogger(__name__)

METHODS = frozenset({"POST", "PATCH"})
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# The headers of an answer worth replaying (rate limits, request ids and the
# like are added afresh around the replay).
STORED_HEADERS = frozenset(
    {
        b"content-type",
        b"content-disposition",
        b"location",
        b"etag",
        b"link",
        b"cache-control",
        b"last-modified",
    }
)
# Answers that say nothing final about the request (the caller may be allowed
# or able to do it on a retry) are not stored: the key is freed instead.
_NOT_FINAL = frozenset({401, 403, 408, 425, 429})
REPLAYED = (b"idempotent-replayed", b"true")


def stored(status: int) -> bool:
    """Whether an answer with this status is kept for replay."""
    return status < 500 and status not in _NOT_FINAL


def fingerprint(scope: Scope, body: bytes) -> str:
    """What makes two requests the same: method, path, query and body."""
    digest = hashlib.sha256()
    digest.update(scope["method"].encode())
    digest.update(b"\n")
    digest.update(scope.get("raw_path") or scope["path"].encode())
    digest.update(b"?")
    digest.update(scope.get("query_string", b""))
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Gone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class IdempotencyMiddleware:
    """Pure ASGI; only POST and PATCH with an `Idempotency-Key` from a verified caller pay for it.

    The key is claimed before the request runs: a second request with the key
    while the first runs is a `409`, one with a different method, path, query
    or body a `422`, and one after the first finished gets the stored answer
    with `Idempotent-Replayed: true`. Server errors (and answers such as 401,
    403, 429) are not stored: the key is freed so a retry runs again.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Callable[[], IdempotencyStore | None],
        tokens: VerifiedTokens,
        max_body: int,
        max_answer: int = 1 << 20,
    ):
        self.app = app
        self.store = store
        self.tokens = tokens
        self.max_body = max_body
        self.max_answer = max_answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        key = header(scope, b"idempotency-key")
        principal = verified_caller(scope, self.tokens) if key is not None else None
        store = self.store() if principal is not None else None
        if key is None or principal is None or store is None:
            # No key, or no caller: the route answers (401 without a token).
            await self.app(scope, receive, send)
            return
        if not _KEY.match(key):
            await problem(
                400,
                "Bad request",
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
                errors=[{"field": "Idempotency-Key", "location": "header", "message": "invalid"}],
            )(scope, receive, send)
            return
        try:
            body = await _read_body(receive, self.max_body)
        except _Gone:
            return
        except _TooLarge:
            await problem(
                413,
                "Payload too large",
                f"A request body may be at most {self.max_body} bytes.",
                slug="payload-too-large",
            )(scope, receive, send)
            return
        caller = caller_id(principal)
        try:
            claim = await store.claim(caller, key, fingerprint(scope, body))
        except Exception:
            # Without the store the promise cannot be kept; the client retries with the key.
            log.exception("idempotency store unavailable")
            await problem(
                503,
                "Service unavailable",
                "Requests with an Idempotency-Key cannot be taken just now; retry shortly.",
                slug="unavailable",
                headers={"Retry-After": "5"},
            )(scope, receive, send)
            return
        if claim.mismatch:
            await problem(
                422,
                "Idempotency key reused",
                "This Idempotency-Key was used for a different request (method, path or body).",
                slug="idempotency-key-reused",
            )(scope, receive, send)
        elif claim.in_progress:
            await problem(
                409,
                "Request in progress",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                slug="idempotency-key-in-progress",
                headers={"Retry-After": "1"},
            )(scope, receive, send)
        elif claim.answer is not None:
            await _replay(claim.answer, send)
        else:
            assert claim.owner is not None
            await self._run(scope, receive, send, body, store, caller, key, claim.owner)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        store: IdempotencyStore,
        caller: str,
        key: str,
        owner: str,
    ) -> None:
        given = False

        async def replay_body() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 0
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        size = 0
        settled = False

        async def settle(done: bool) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            try:
                if done and stored(status) and size <= self.max_answer:
                    await store.complete(
                        caller, key, owner, Answer(status, headers, b"".join(chunks))
                    )
                else:
                    await store.release(caller, key, owner)
            except Exception:
                # The in-progress marker expires on its own.
                log.exception("idempotency store unavailable; answer not stored")

        async def capture(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.lower() in STORED_HEADERS
                )
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= self.max_answer:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    # Settled before the client has the last byte, so a retry
                    # sent right after the answer finds it stored (or freed), not
                    # "in progress". A client that gave up is not waited for:
                    # the answer is stored all the same, for its retry.
                    await settle(done=True)
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            await settle(done=False)


async def _replay(answer: Answer, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    headers.append(REPLAYED)
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})
