"""Access tokens outlive a logout; the guard refuses those whose session or user has ended."""

from __future__ import annotations

import time

from crm_gateway.auth.service import session_state
from crm_kernel.auth import Principal
from crm_kernel.db import Database
from crm_kernel.problems import Unauthorized


class SessionGuard:
    """Checks an access token's `sid` against the database, remembered for a moment.

    The short memory keeps the check off the database for most requests;
    revocations done by this process are forgotten at once, those done by
    another replica are seen within `ttl` seconds.
    """

    def __init__(self, *, ttl: float = 2.0, max_entries: int = 100_000):
        self.ttl = ttl
        self.max_entries = max_entries
        # session id -> (checked until, owner user id, live)
        self._seen: dict[str, tuple[float, str, bool]] = {}

    async def ensure_live(self, db: Database, principal: Principal) -> None:
        """401 unless the token's session is live and belongs to the token's user."""
        sid = principal.session_id
        if not sid:
            raise Unauthorized("The access token names no session; log in again.")
        now = time.monotonic()
        seen = self._seen.get(sid)
        if seen is None or seen[0] <= now:
            state = await session_state(db, session_id=sid)
            if len(self._seen) >= self.max_entries:
                self._seen.clear()
            seen = (
                now + self.ttl,
                state.user_id if state else "",
                bool(state and state.live),
            )
            self._seen[sid] = seen
        _, owner, live = seen
        if not live or owner != principal.user_id:
            raise Unauthorized("The session has ended; log in again.")

    def forget(self, session_id: str) -> None:
        """Drop what is remembered of a session (it was just revoked here)."""
        self._seen.pop(session_id, None)

    def forget_user(self, user_id: str) -> None:
        """Drop what is remembered of a user's sessions (deactivated, password changed)."""
        for sid in [sid for sid, seen in self._seen.items() if seen[1] == user_id]:
            del self._seen[sid]
