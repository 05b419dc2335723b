"""Who is signed in: the last logins of clients that hold no session, and the listing.

3.x and 4.x clients log in once and hold no session, so the server cannot know whether
they still run. What it can say is when each user last logged in from each machine: that
is kept here, one entry per (user, machine), for granted logins only (a refused name is
not someone using OfficeStatus, and would let anyone fill the table). 3.x clients send no
machine name: their entries have none, and are shown as "unknown".

Bounded: at most `DEFAULT_MAX_LAST_LOGINS` entries; a login beyond that forgets the
entry logged in least recently (in memory now, in the database with the next batch).
Written down in batches with the sessions (`take_flush`, once a minute and at a clean
stop), never on a login's path, so a restart keeps them; a crash loses at most the
logins of the last minute.

`clip` keeps what a client sends within bounds before it is kept: a request may carry
16 KiB of text, and a machine name or version has a few dozen characters.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from officestatus_server.core.sessions import Session

# One entry per user of a 100,000-user installation, each on one machine: some 490 bytes
# an entry (measured with tracemalloc), about 50 MB at the bound.
DEFAULT_MAX_LAST_LOGINS = 100_000
# NetBIOS names have 15 characters and DNS labels 63: longer names are clipped. A longer
# client version is refused at login anyway (core/versions.py).
MAX_MACHINE_NAME = 64
MAX_CLIENT_VERSION = 64


def clip(text: str, limit: int) -> str:
    """`text` as kept and shown: at most `limit` characters, control characters (which
    would act on the admin's terminal) replaced by "?"."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text


class LastLogin(NamedTuple):
    """The last granted login of a user from one machine, by a client without sessions."""

    user_key: str
    # The user's name as the registry spells it at the login.
    user_name: str
    # "" when the client sent none (3.x clients never do).
    machine: str
    # The client_version it sent ("4.1.0"; "" for a 3.x client that sent none).
    version: str
    # The client protocol release, 3 or 4.
    release: int
    at: datetime

    @property
    def key(self) -> tuple[str, str]:
        """What makes an entry one: the user and the machine."""
        return (self.user_key, self.machine)


@dataclass(frozen=True)
class LastLoginFlush:
    """A batch to write down: entries recorded and entries forgotten since the last one."""

    recorded: tuple[LastLogin, ...]
    # (user key, machine) of entries dropped at the bound.
    forgotten: tuple[tuple[str, str], ...]


class LastLogins:
    """The last logins of 3.x and 4.x clients, per (user, machine), bounded."""

    def __init__(
        self, earlier: Iterable[LastLogin] = (), bound: int = DEFAULT_MAX_LAST_LOGINS
    ) -> None:
        self.bound = bound
        # Logged in least recently first.
        self._entries: OrderedDict[tuple[str, str], LastLogin] = OrderedDict()
        for entry in sorted(earlier, key=lambda e: e.at):
            self._entries[entry.key] = entry
        self._recorded: dict[tuple[str, str], None] = {}
        self._forgotten: set[tuple[str, str]] = set()
        # Stored beyond a (lowered) bound: forgotten with the first batch.
        self._trim()

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, entry: LastLogin) -> None:
        """Keep a login, replacing the user's last one from that machine."""
        key = entry.key
        entries = self._entries
        entries[key] = entry
        entries.move_to_end(key)
        self._recorded[key] = None
        self._forgotten.discard(key)
        if len(entries) > self.bound:
            self._trim()

    def _trim(self) -> None:
        while len(self._entries) > self.bound:
            key, _ = self._entries.popitem(last=False)
            self._recorded.pop(key, None)
            self._forgotten.add(key)

    def of_user(self, user_key: str) -> list[LastLogin]:
        """A user's entries, oldest first."""
        return [e for e in self._entries.values() if e.user_key == user_key]

    def every(self) -> Iterable[LastLogin]:
        """Every entry, logged in least recently first."""
        return self._entries.values()

    def take_flush(self) -> LastLoginFlush:
        """The changes since the last batch, to write down; the next batch starts."""
        entries = self._entries
        flush = LastLoginFlush(
            tuple(entries[k] for k in self._recorded if k in entries), tuple(self._forgotten)
        )
        self._recorded = {}
        self._forgotten = set()
        return flush

    def flush_failed(self, flush: LastLoginFlush) -> None:
        """A batch could not be written: its changes go into the next one."""
        for entry in flush.recorded:
            if entry.key in self._entries:
                self._recorded[entry.key] = None
        self._forgotten.update(k for k in flush.forgotten if k not in self._entries)


@dataclass(frozen=True)
class SignedIn:
    """One line of the listing: a live session, or the last login of a client without."""

    user_name: str
    # "" when the client sent none.
    machine: str
    version: str
    release: int
    # True: a live session (5.x and later); False: a last login (3.x, 4.x).
    session: bool
    # When it signed in (a last login: when); None when not known.
    since: datetime | None
    # When the session was last heard from (its login or its last heartbeat); None for
    # a last login.
    last_heard: datetime | None


# Replies carry at most this many lines: 250,000 sessions are 250 pages, not one message.
PAGE = 1000


def listing_page(
    sessions: Iterable[Session],
    last_logins: Iterable[LastLogin],
    name_of: Callable[[str], str | None],
    wall_now: datetime,
    monotonic_now: float,
    offset: int,
    limit: int,
) -> tuple[list[SignedIn], int]:
    """The lines from `offset` (at most `limit`), by user, sessions before last logins,
    then by sign-in time; and how many lines there are in all. `name_of` gives a user's
    name by key (None: removed; a removed user's last logins are not listed). Times on
    the monotonic clock become wall-clock times as of `wall_now`."""
    keyed_sessions = ((s.user_key, 0, s.seen.since, s.seen.machine, s) for s in sessions)
    keyed_logins = (
        (e.user_key, 1, e.at.timestamp(), e.machine, e)
        for e in last_logins
        if name_of(e.user_key) is not None
    )
    counter = itertools.count()
    rows = [
        (key, kind, since, machine, next(counter), item)
        for key, kind, since, machine, item in itertools.chain(keyed_sessions, keyed_logins)
    ]
    chosen = heapq.nsmallest(offset + limit, rows)[offset:]
    lines: list[SignedIn] = []
    for user_key, _, _, _, _, item in chosen:
        name = name_of(user_key) or user_key
        if isinstance(item, Session):
            seen = item.seen
            heard = wall_now - timedelta(seconds=max(0.0, monotonic_now - item.last_seen))
            since = datetime.fromtimestamp(seen.since, UTC) if seen.since else None
            lines.append(
                SignedIn(name, seen.machine, seen.version, item.release, True, since, heard)
            )
        elif isinstance(item, LastLogin):
            lines.append(
                SignedIn(name, item.machine, item.version, item.release, False, item.at, None)
            )
    return lines, len(rows)
