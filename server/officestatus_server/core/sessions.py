"""Client sessions (5.x and later): signed session ids, heartbeats, expiry, bounds.

A session id is signed with a secret kept in the database and names the server run that
issued it. Liveness is measured on a monotonic clock (seconds, passed in as `now`): the
wall clock may jump, a session's age may not. A session that logged out, missed
`MISSED_HEARTBEATS` intervals or was ended to keep within the bounds is gone, and its
next heartbeat is refused.

Bounds: a user holds at most `max_per_user` live sessions (a further login ends the
user's oldest session) and the server at most `max_total` (a further login ends the
least recently seen session). The ended client hears why at its next heartbeat.

Across a restart: which sessions are live is written down in batches (`take_flush`, now
and then and at a clean stop), never on a login's path. A new run resumes, within
`MISSED_HEARTBEATS` intervals of its start, only the sessions an earlier run had written
down as live, and those it issued after its last batch was written (the id names that
batch: an earlier run that crashed may have issued them). So a logged-out or expired
session stays ended after a restart, except one that ended after the last batch before
a crash.

Several servers over one database (`shared`): each is a run, and a client may move to
another server when its own fails. A genuine id of another run is then honoured at any
time (not only just after a start), unless it ended: logged out or dropped here, or
logged out at another server (`ended_elsewhere`, as the database tells). Those ids are
remembered, the newest `max_total` of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import os
import secrets
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from officestatus_server.core import b64url

MISSED_HEARTBEATS = 3
# A user on more machines than this is signing in somewhere and never out: ten covers a
# desktop, a laptop, terminal-server sessions and a spare, per person.
DEFAULT_MAX_PER_USER = 10
# An installation has up to 100,000 users: 2.5 sessions each on average, about 145 MB of
# memory at the bound (some 585 bytes a session, ids, indexes and where it signed in
# from included, measured with tracemalloc).
DEFAULT_MAX_TOTAL = 250_000
# Sessions ended for the bounds whose reason is kept for their next heartbeat: some
# 600 bytes each.
_NOTICES_KEPT = 25_000
# The format's version: s2 ids are MACed with keyed BLAKE2b.
_PREFIX = "s2"
# Nonces are drawn from the system's generator this many at a time: one system call
# for many logins instead of one each.
_NONCES_AT_ONCE = 512


class Ended(Enum):
    """Why a session was ended to keep within the bounds."""

    USER_LIMIT = "user-limit"
    TOTAL_LIMIT = "total-limit"
    # An administrator ended the user's sessions (officestatus-admin sessions end).
    ADMIN = "admin"


class Seen(NamedTuple):
    """Where and since when a session was signed in, as its client said at login."""

    # The machine name the client sent ("" when it sent none), clipped.
    machine: str
    # The client_version it sent ("5.2.0"), clipped.
    version: str
    # When it signed in, on the wall clock (POSIX seconds; 0.0: not known, e.g. a
    # session resumed after a crash before it was written down).
    since: float


NOT_SEEN = Seen("", "", 0.0)


@dataclass(slots=True)
class Session:
    """One live session."""

    user_key: str
    # When it was last heard from, on the monotonic clock.
    last_seen: float
    # The client protocol release (5 or later) that opened it: shapes the replies.
    release: int
    # The server run that issued it.
    run: str
    # Where and since when it signed in (for the admin's listing).
    seen: Seen = NOT_SEEN


@dataclass(frozen=True)
class EarlierRuns:
    """What storage knows of the sessions of earlier runs."""

    # Ids written down as live by an earlier run.
    live: frozenset[str] = frozenset()
    # Each recorded run, with the last batch it wrote down: its ids of a later batch
    # were issued after it, and may be live.
    flushed: Mapping[str, int] = field(default_factory=dict)
    # No run was ever recorded (a new installation, or the first start of a server that
    # keeps this record): the ids of unrecorded runs are resumed as before.
    unrecorded: bool = True
    # Sessions a takeover carried from a 5.x server and still written down as live: the
    # id that server gave the client, and the user's key.
    carried: Mapping[str, str] = field(default_factory=dict)
    # Where and since when the live ones signed in, as written down with them.
    seen: Mapping[str, Seen] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionFlush:
    """A batch to write down: which sessions began or ended since the last one."""

    run: str
    # Every id this run issued with a batch number up to this is reflected.
    epoch: int
    opened: tuple[str, ...]
    ended: tuple[str, ...]
    # The earlier runs' sessions can no longer be resumed: forget them.
    forget_earlier: bool
    # Where and since when each opened session that is still live signed in.
    seen: Mapping[str, Seen] = field(default_factory=dict)


class Notice(NamedTuple):
    """A session ended to keep within the bounds: told at its next heartbeat. (A named
    tuple: a login beyond a bound makes one, at a third of a frozen dataclass' cost.)"""

    at: float
    why: Ended
    user_key: str


class SessionTable:
    """Live sessions of this server run; `now` (monotonic seconds) is always passed in."""

    def __init__(
        self,
        secret: bytes,
        interval: float,
        *,
        started: float = 0.0,
        earlier: EarlierRuns | None = None,
        max_per_user: int = DEFAULT_MAX_PER_USER,
        max_total: int = DEFAULT_MAX_TOTAL,
        shared: bool = False,
    ) -> None:
        self.shared = shared
        self._keyed = hashlib.blake2b(key=secret, digest_size=18)
        self.interval = float(interval)
        self.max_per_user = max_per_user
        self.max_total = max_total
        # Names this run in the ids it issues: an id of this run that is not live ended.
        self.run = secrets.token_hex(8)
        # Least recently seen first (the clock is monotonic): a heartbeat moves its
        # session to the back, so the stale ones are at the front.
        self._live: OrderedDict[str, Session] = OrderedDict()
        # Each user's live sessions, oldest first.
        self._by_user: dict[str, dict[str, None]] = {}
        # Live sessions by the client release that opened them (for the metrics).
        self._by_release: Counter[int] = Counter()
        self._notices: OrderedDict[str, Notice] = OrderedDict()
        self._sweep_due = float("-inf")
        self._nonces: list[str] = []
        # Resuming sessions of earlier runs: only until every live one would have
        # heartbeated.
        earlier = earlier or EarlierRuns()
        self._resume_until = started + self.interval * MISSED_HEARTBEATS
        self._resuming = True
        self._resumable = set(earlier.live)
        self._seen_earlier = dict(earlier.seen)
        self._flushed = dict(earlier.flushed)
        self._unrecorded = earlier.unrecorded
        # Sessions of earlier runs resumed or ended in this run: never resumed again.
        self._consumed: set[str] = set()
        # Shared: ids of other runs that ended (here or at another server), oldest first.
        self._ended_others: OrderedDict[str, None] = OrderedDict()
        self._forget_earlier = False
        # Since the last batch: opened (True when a row of it may be stored) and ended.
        self._epoch = 1
        self._opened: dict[str, bool] = {}
        self._closed: set[str] = set()
        # Carried 5.x sessions are live from the start: their clients go on heartbeating
        # with the ids the 5.x server gave them (which carry no MAC: they are known here
        # by their id alone, and never resumed from an id).
        for session_id, user_key in earlier.carried.items():
            self._add(session_id, Session(user_key, started, 5, "5.x"), started)
            self._opened[session_id] = True

    def __len__(self) -> int:
        return len(self._live)

    def live(self, now: float) -> int:
        """How many sessions are live at `now` (stale ones dropped first)."""
        self.expire(now)
        return len(self._live)

    def live_by_release(self, now: float) -> dict[int, int]:
        """How many sessions are live at `now`, by the client release that opened them
        (stale ones dropped first); releases with none are left out."""
        self.expire(now)
        return {release: n for release, n in sorted(self._by_release.items()) if n}

    def _mac(self, body: str) -> str:
        # Keyed BLAKE2b (RFC 7693), from a copy of the state that has taken the key.
        mac = self._keyed.copy()
        mac.update(body.encode("ascii"))
        return b64url.encode(mac.digest())

    def open(self, user_key: str, now: float, release: int, seen: Seen = NOT_SEEN) -> str:
        """Start a session for a user and return its id; `seen`: where and since when."""
        if now >= self._sweep_due:
            self._sweep(now)
        # release|run-batch|nonce|user: the user key last, as the only part that may hold
        # "|". The nonce makes each id unique (the MAC, not the nonce, stops forgery); from
        # the system's generator, so ids tell nothing of how many sessions this run opened.
        nonce = self._nonces.pop() if self._nonces else self._draw_nonces()
        payload = f"{release}|{self.run}-{self._epoch}|{nonce}|{user_key}"
        # _mac and _add written out (bounds aside): every login with a session runs this.
        body = f"{_PREFIX}.{b64url.encode(payload.encode())}"
        mac = self._keyed.copy()
        mac.update(body.encode("ascii"))
        session_id = f"{body}.{b64url.encode(mac.digest())}"
        session = Session(user_key, now, release, self.run, seen)
        mine = self._by_user.get(user_key)
        live = self._live
        if (mine is not None and len(mine) >= self.max_per_user) or len(live) >= self.max_total:
            self._add(session_id, session, now)  # ends others first to keep within the bounds
        else:
            live[session_id] = session
            self._by_release[release] += 1
            if mine is None:
                self._by_user[user_key] = {session_id: None}
            else:
                mine[session_id] = None
        self._opened[session_id] = False
        return session_id

    def _add(self, session_id: str, session: Session, now: float) -> None:
        """Make a session live, ending others first to keep within the bounds."""
        mine = self._by_user.get(session.user_key, {})
        while len(mine) >= self.max_per_user:
            self._bound(next(iter(mine)), Ended.USER_LIMIT, now)
        while len(self._live) >= self.max_total:
            self._bound(next(iter(self._live)), Ended.TOTAL_LIMIT, now)
        self._live[session_id] = session
        self._by_release[session.release] += 1
        # Looked up again: ending the user's last session above dropped the user's entry.
        self._by_user.setdefault(session.user_key, {})[session_id] = None

    def _bound(self, session_id: str, why: Ended, now: float) -> None:
        user_key = self._live[session_id].user_key
        self._end(session_id)
        self._notices[session_id] = Notice(now, why, user_key)
        # Told at the next heartbeat, due within an interval; kept no longer than the
        # session could have lived, and no more of them than _NOTICES_KEPT (a storm of
        # logins past the bounds must not fill memory with them: beyond it, an ended
        # client hears only that its session ended).
        while len(self._notices) > min(self.max_total, _NOTICES_KEPT):
            self._notices.popitem(last=False)

    def _draw_nonces(self) -> str:
        """A fresh nonce (64 random bits in hex), with more kept for the next logins."""
        pool = os.urandom(8 * _NONCES_AT_ONCE).hex()
        self._nonces = [pool[i : i + 16] for i in range(16, len(pool), 16)]
        return pool[:16]

    def _verified(self, session_id: str) -> tuple[Session, int | None] | None:
        """The session a genuine id describes (last seen: never) and the batch it was
        issued in (None for ids from before batches were named), or None."""
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
            release_text, run_text, _, user = payload.decode("utf-8").split("|", 3)
            release = int(release_text) if release_text.isdigit() else -1
        except ValueError:
            return None
        if release < 0 or len(release_text) > 3:
            return None
        run, _, epoch_text = run_text.partition("-")
        epoch = int(epoch_text) if epoch_text.isdigit() and len(epoch_text) < 12 else None
        return Session(user, float("-inf"), release, run), epoch

    def touch(self, session_id: str, now: float) -> Session | None:
        """Record a heartbeat; the session, or None when it is gone."""
        self._sweep(now)
        session = self._live.get(session_id)
        if session is not None:
            if session.last_seen < self._stale_before(now):
                self._end(session_id)
                return None
            session.last_seen = now
            self._live.move_to_end(session_id)
            return session
        if (
            session_id in self._notices
            or session_id in self._consumed
            or session_id in self._ended_others
        ):
            return None
        verified = self._verified(session_id)
        if verified is None or not self._may_resume(session_id, *verified, now):
            return None  # forged, issued by this run and since ended, or ended before
        resumed = verified[0]
        resumed.last_seen = now  # issued before a restart and live then: resume it
        resumed.seen = self._seen_earlier.pop(session_id, NOT_SEEN)
        if not self.shared:  # shared: remembered when it ends (bounded)
            self._consumed.add(session_id)
        self._resumable.discard(session_id)
        self._add(session_id, resumed, now)
        self._opened[session_id] = True
        return resumed

    def _may_resume(self, session_id: str, session: Session, epoch: int | None, now: float) -> bool:
        if session.run == self.run:
            return False
        if self.shared:
            return True  # issued by another server, and not ended: it moved here
        if not self._resuming or now > self._resume_until:
            return False
        if session_id in self._resumable:
            return True
        flushed = self._flushed.get(session.run)
        if flushed is None:
            return self._unrecorded
        return epoch is not None and epoch > flushed

    def release_of(self, session_id: str) -> int | None:
        """The client release a genuine session id was issued to, live or not."""
        verified = self._verified(session_id)
        return verified[0].release if verified else None

    def ended_because(self, session_id: str) -> Notice | None:
        """Why a session was ended to keep within the bounds, if it was."""
        return self._notices.get(session_id)

    def of_user(self, user_key: str, now: float) -> list[Session]:
        """A user's live sessions, oldest first."""
        self.expire(now)
        live = self._live
        return [live[sid] for sid in self._by_user.get(user_key, {})]

    def every(self, now: float) -> Iterable[Session]:
        """Every live session (stale ones dropped first), least recently seen first."""
        self.expire(now)
        return self._live.values()

    def ids_of_user(self, user_key: str, now: float) -> list[str]:
        """The ids of a user's live sessions, oldest first."""
        self.expire(now)
        return list(self._by_user.get(user_key, {}))

    def end_for_admin(self, session_ids: Iterable[str], now: float) -> int:
        """End these sessions (those still live) for an administrator: their clients hear
        why at their next heartbeat. How many were ended."""
        ended = 0
        for session_id in session_ids:
            if session_id in self._live:
                self._bound(session_id, Ended.ADMIN, now)
                ended += 1
        return ended

    def ended_elsewhere(self, session_ids: Iterable[str]) -> int:
        """Sessions logged out at another server: ended here too, and never resumed.
        How many of them were live here."""
        ended = 0
        for session_id in session_ids:
            if self._end(session_id):
                ended += 1
            self._remember_ended(session_id)
        return ended

    def _remember_ended(self, session_id: str) -> None:
        ended = self._ended_others
        ended[session_id] = None
        ended.move_to_end(session_id)
        while len(ended) > self.max_total:
            ended.popitem(last=False)

    def close(self, session_id: str) -> bool:
        """End a session (logout); whether it was live."""
        if self._end(session_id):
            return True
        # A session of an earlier run that has not heartbeated since the restart.
        verified = self._verified(session_id)
        if verified is not None and verified[0].run != self.run:
            if self.shared:
                self._remember_ended(session_id)
            else:
                self._consumed.add(session_id)
            self._resumable.discard(session_id)
            self._closed.add(session_id)
        return False

    def expire(self, now: float) -> int:
        """Drop sessions that missed too many heartbeats; how many were dropped. Looks
        at the stale sessions only: they are at the front."""
        limit = self._stale_before(now)
        stale = list(itertools.takewhile(lambda sid: self._live[sid].last_seen < limit, self._live))
        for sid in stale:
            self._end(sid)
        while self._notices and next(iter(self._notices.values())).at < limit:
            self._notices.popitem(last=False)
        if self._resuming and now > self._resume_until and not self.shared:
            # Every live session of an earlier run has heartbeated by now: the others
            # ended, and what is stored of them goes with the next batch.
            self._resuming = False
            self._forget_earlier = True
            self._resumable = set()
            self._flushed = {}
            self._consumed = set()
            self._seen_earlier = {}
        return len(stale)

    def _sweep(self, now: float) -> None:
        """Drop stale sessions at most once an interval: clients that exit without
        Logout must not pile up."""
        if now >= self._sweep_due:
            self._sweep_due = now + self.interval
            self.expire(now)

    def _end(self, session_id: str) -> bool:
        session = self._live.pop(session_id, None)
        if session is None:
            return False
        if self.shared and session.run != self.run:
            self._remember_ended(session_id)
        self._by_release[session.release] -= 1
        mine = self._by_user[session.user_key]
        del mine[session_id]
        if not mine:
            del self._by_user[session.user_key]
        if self._opened.pop(session_id, True):
            self._closed.add(session_id)
        return True

    def _stale_before(self, now: float) -> float:
        return now - self.interval * MISSED_HEARTBEATS

    # --- writing down which sessions are live -----------------------------------------

    def take_flush(self) -> SessionFlush:
        """The changes since the last batch, to write down; the next batch starts."""
        live = self._live
        flush = SessionFlush(
            self.run,
            self._epoch,
            tuple(self._opened),
            tuple(self._closed),
            self._forget_earlier,
            {sid: live[sid].seen for sid in self._opened if sid in live},
        )
        self._epoch += 1
        self._opened = {}
        self._closed = set()
        self._forget_earlier = False
        return flush

    def flush_failed(self, flush: SessionFlush) -> None:
        """A batch could not be written: its changes go into the next one."""
        for sid in flush.opened:
            if sid in self._live:
                self._opened[sid] = True
        self._closed.update(flush.ended)
        self._forget_earlier = self._forget_earlier or flush.forget_earlier
