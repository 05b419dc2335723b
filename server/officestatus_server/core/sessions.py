"""Client sessions (5.x and later): signed session ids, heartbeats, expiry.

A session id is signed with a secret kept in the database, so a server that restarts
recognises the sessions it handed out before and resumes them at the next heartbeat
instead of signing everybody out. Within one run, a session that logged out or missed
`MISSED_HEARTBEATS` intervals is gone, and its next heartbeat is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MISSED_HEARTBEATS = 3
_PREFIX = "s1"


@dataclass
class Session:
    """One live session."""

    user_key: str
    last_seen: datetime
    # The client protocol release (5 or later) that opened it: shapes the replies.
    release: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SessionTable:
    """Live sessions of this server run; `now` is always passed in."""

    def __init__(self, secret: bytes, started_at: datetime, interval: timedelta) -> None:
        self._secret = secret
        self._started_at = started_at
        self.interval = interval
        self._live: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._live)

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest()
        return _b64(digest[:18])

    def open(self, user_key: str, now: datetime, release: int) -> str:
        """Start a session for a user and return its id."""
        payload = json.dumps(
            {
                "u": user_key,
                "r": release,
                "t": int(now.timestamp() * 1000),
                "n": secrets.token_hex(8),
            },
            separators=(",", ":"),
        )
        body = f"{_PREFIX}.{_b64(payload.encode('utf-8'))}"
        session_id = f"{body}.{self._mac(body)}"
        self._live[session_id] = Session(user_key, now, release)
        return session_id

    def _verified(self, session_id: str) -> tuple[Session, datetime] | None:
        parts = session_id.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX or len(session_id) > 2048:
            return None
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(body), parts[2]):
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            issued_at = datetime.fromtimestamp(int(raw["t"]) / 1000, UTC)
            return Session(str(raw["u"]), issued_at, int(raw["r"])), issued_at
        except (ValueError, KeyError, TypeError):
            return None

    def touch(self, session_id: str, now: datetime) -> Session | None:
        """Record a heartbeat; the session, or None when it is gone."""
        session = self._live.get(session_id)
        if session is not None:
            if session.last_seen < self._stale_before(now):
                del self._live[session_id]
                return None
            session.last_seen = now
            return session
        verified = self._verified(session_id)
        if verified is None:
            return None
        session, issued_at = verified
        if issued_at >= self._started_at:
            return None  # issued in this run, so it ended: logged out or timed out
        session.last_seen = now  # issued before a restart: resume it
        self._live[session_id] = session
        return session

    def release_of(self, session_id: str) -> int | None:
        """The client release a genuine session id was issued to, live or not."""
        verified = self._verified(session_id)
        return verified[0].release if verified else None

    def close(self, session_id: str) -> bool:
        """End a session (logout); whether it was live."""
        return self._live.pop(session_id, None) is not None

    def drop_user(self, user_key: str) -> None:
        """End every session of a user (after a refused heartbeat)."""
        for sid in [s for s, v in self._live.items() if v.user_key == user_key]:
            del self._live[sid]

    def expire(self, now: datetime) -> int:
        """Drop sessions that missed too many heartbeats; how many were dropped."""
        limit = self._stale_before(now)
        stale = [sid for sid, s in self._live.items() if s.last_seen < limit]
        for sid in stale:
            del self._live[sid]
        return len(stale)

    def _stale_before(self, now: datetime) -> datetime:
        return now - self.interval * MISSED_HEARTBEATS
