"""Client sessions (5.x and later): signed session ids, heartbeats, expiry.

A session id is signed with a secret kept in the database and names the server run that
issued it, so a server that restarts recognises the sessions an earlier run handed out
and resumes each at its next heartbeat instead of signing everybody out. A session that
logged out or missed `MISSED_HEARTBEATS` intervals is gone, resumed or not, and its next
heartbeat is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from officestatus_server.core import b64url

MISSED_HEARTBEATS = 3
_NEVER = datetime.min.replace(tzinfo=UTC)
# The format's version: s2 ids are MACed with keyed BLAKE2b.
_PREFIX = "s2"
# Nonces are drawn from the system's generator this many at a time: one system call
# for many logins instead of one each.
_NONCES_AT_ONCE = 512


@dataclass(slots=True)
class Session:
    """One live session."""

    user_key: str
    last_seen: datetime
    # The client protocol release (5 or later) that opened it: shapes the replies.
    release: int
    # The server run that issued it.
    run: str


class SessionTable:
    """Live sessions of this server run; `now` is always passed in."""

    def __init__(self, secret: bytes, interval: timedelta) -> None:
        self._keyed = hashlib.blake2b(key=secret, digest_size=18)
        self.interval = interval
        # Names this run in the ids it issues: an id of this run that is not live ended.
        self.run = secrets.token_hex(8)
        # Least recently seen first: a heartbeat moves its session to the back, so the
        # stale ones are at the front and dropping them does not walk the live ones.
        self._live: OrderedDict[str, Session] = OrderedDict()
        # When the clock went back, a later heartbeat can carry an earlier time: the
        # order then does not hold, and `expire` looks at every session until it does.
        self._in_order = True
        self._newest = _NEVER
        # Sessions of earlier runs that were resumed and then ended in this one.
        self._ended: set[str] = set()
        self._sweep_due = _NEVER
        self._nonces: list[str] = []

    def __len__(self) -> int:
        return len(self._live)

    def live(self, now: datetime) -> int:
        """How many sessions are live at `now` (stale ones dropped first)."""
        self.expire(now)
        return len(self._live)

    def _mac(self, body: str) -> str:
        # Keyed BLAKE2b (RFC 7693), from a copy of the state that has taken the key.
        mac = self._keyed.copy()
        mac.update(body.encode("ascii"))
        return b64url.encode(mac.digest())

    def open(self, user_key: str, now: datetime, release: int) -> str:
        """Start a session for a user and return its id."""
        self._sweep(now)
        # release|run|nonce|user: the user key last, as the only part that may hold "|".
        # The nonce makes each id unique (the MAC, not the nonce, stops forgery); from the
        # system's generator, so ids tell nothing of how many sessions this run opened.
        nonce = self._nonces.pop() if self._nonces else self._draw_nonces()
        payload = f"{release}|{self.run}|{nonce}|{user_key}"
        body = f"{_PREFIX}.{b64url.encode(payload.encode())}"
        session_id = f"{body}.{self._mac(body)}"
        self._live[session_id] = Session(user_key, now, release, self.run)
        self._seen(now)
        return session_id

    def _draw_nonces(self) -> str:
        """A fresh nonce (64 random bits in hex), with more kept for the next logins."""
        pool = os.urandom(8 * _NONCES_AT_ONCE).hex()
        self._nonces = [pool[i : i + 16] for i in range(16, len(pool), 16)]
        return pool[:16]

    def _seen(self, now: datetime) -> None:
        """A session was just put at the back, seen at `now`."""
        if now >= self._newest:
            self._newest = now
        else:
            self._in_order = False

    def _verified(self, session_id: str) -> Session | None:
        """The session a genuine id describes (last seen: never), or None."""
        if len(session_id) > 2048 or not session_id.isascii():
            return None
        parts = session_id.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._mac(body), parts[2]):
            return None
        try:
            payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
            release_text, run, _, user = payload.decode("utf-8").split("|", 3)
            release = int(release_text) if release_text.isdigit() else -1
        except ValueError:
            return None
        if release < 0 or len(release_text) > 3:
            return None
        return Session(user, datetime.min.replace(tzinfo=UTC), release, run)

    def touch(self, session_id: str, now: datetime) -> Session | None:
        """Record a heartbeat; the session, or None when it is gone."""
        self._sweep(now)
        session = self._live.get(session_id)
        if session is not None:
            if session.last_seen < self._stale_before(now):
                self._end(session_id)
                return None
            session.last_seen = now
            self._live.move_to_end(session_id)
            self._seen(now)
            return session
        if session_id in self._ended:
            return None
        resumed = self._verified(session_id)
        if resumed is None or resumed.run == self.run:
            return None  # forged, or issued by this run and since ended
        resumed.last_seen = now  # issued before a restart: resume it
        self._live[session_id] = resumed
        self._seen(now)
        return resumed

    def release_of(self, session_id: str) -> int | None:
        """The client release a genuine session id was issued to, live or not."""
        verified = self._verified(session_id)
        return verified.release if verified else None

    def close(self, session_id: str) -> bool:
        """End a session (logout); whether it was live."""
        if self._end(session_id):
            return True
        # A session of an earlier run that has not heartbeated since the restart.
        earlier = self._verified(session_id)
        if earlier is not None and earlier.run != self.run:
            self._ended.add(session_id)
        return False

    def expire(self, now: datetime) -> int:
        """Drop sessions that missed too many heartbeats; how many were dropped. Looks
        at the stale sessions only, unless the clock went back (then at all of them)."""
        limit = self._stale_before(now)
        if self._in_order:
            stale = list(
                itertools.takewhile(lambda sid: self._live[sid].last_seen < limit, self._live)
            )
        else:
            stale = [sid for sid, s in self._live.items() if s.last_seen < limit]
        for sid in stale:
            self._end(sid)
        if not self._in_order:
            seen = [s.last_seen for s in self._live.values()]
            self._in_order = all(a <= b for a, b in itertools.pairwise(seen))
            if self._in_order:
                self._newest = seen[-1] if seen else _NEVER
        return len(stale)

    def _sweep(self, now: datetime) -> None:
        """Drop stale sessions at most once an interval: clients that exit without
        Logout must not pile up."""
        if now >= self._sweep_due:
            self._sweep_due = now + self.interval
            self.expire(now)

    def _end(self, session_id: str) -> bool:
        session = self._live.pop(session_id, None)
        if session is not None and session.run != self.run:
            self._ended.add(session_id)
        return session is not None

    def _stale_before(self, now: datetime) -> datetime:
        return now - self.interval * MISSED_HEARTBEATS
