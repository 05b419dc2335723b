"""The storage seam: what the server needs from a database, and nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Protocol

from officestatus_server.core.audit import ChainedRecord, ChainReport
from officestatus_server.core.model import Change, Installation, User
from officestatus_server.core.names import name_key
from officestatus_server.core.sessions import EarlierRuns, SessionFlush
from officestatus_server.core.signed_in import LastLogin, LastLoginFlush
from officestatus_server.core.takeover import Takeover, TookOver
from officestatus_server.core.usage import UsageHour


@dataclass(frozen=True)
class StoredLicense:
    """An installed key as stored; the server verifies it again at every start."""

    license_id: str
    key_text: str
    installed_at: datetime


@dataclass(frozen=True)
class Stored:
    """Everything the server loads at start."""

    installation: Installation
    session_secret: bytes
    licenses: tuple[StoredLicense, ...]
    users: tuple[User, ...]
    # True when this start created the installation (its evaluation begins now).
    created: bool
    # The latest time the server had seen when it last wrote it down.
    clock_high_water: datetime
    # When this installation was made by taking over an older one: what it left.
    took_over: TookOver | None = None
    # The number of the newest change written down (0 before the first): every change
    # but the clock's high-water mark alone gets the next one (see `numbered`).
    change_number: int = 0


@dataclass(frozen=True)
class Delta:
    """What the changes after a change number did, as stored now: enough to bring a
    memory that held that number up to `number` without reading every user again."""

    number: int
    installation: Installation
    clock_high_water: datetime
    took_over: TookOver | None
    # The users the changes wrote, as they are now; the name keys of those they deleted.
    users: tuple[User, ...]
    removed_user_keys: tuple[str, ...]
    # Every license, when a change installed or removed one; None when none did.
    licenses: tuple[StoredLicense, ...] | None


# The changes a store keeps a record of (for `delta`): a memory further behind reads all.
CHANGES_KEPT = 1000
# A delta that touches more users than this is no cheaper than reading all: none is made.
DELTA_MAX_USERS = 20_000


def touched(change: Change) -> tuple[list[str], bool]:
    """The name keys of the users `change` writes or deletes, and whether it installs or
    removes a license: what the record of a numbered change holds."""
    keys = {name_key(u.name) for u in change.put_users}
    keys.update(name_key(n) for n in change.remove_users)
    return sorted(keys), bool(change.add_licenses or change.remove_licenses)


# The fields of a Change that are the server's own bookkeeping: a change of these alone
# is written but not numbered, so other servers need not reload for it.
_BOOKKEEPING = frozenset({"audit", "clock_high_water", "touched"})


def numbered(change: Change) -> bool:
    """Whether writing `change` takes the next change number (other servers reload)."""
    if change.audit is not None:
        return True
    return any(
        getattr(change, f.name) != f.default for f in fields(change) if f.name not in _BOOKKEEPING
    )


@dataclass(frozen=True)
class Heard:
    """What `Store.follow` heard: a change written by some server (`number`, its change
    number), sessions logged out at another server (`ended_sessions`), or neither, with
    `number` None: the store may have missed notices (a reconnect, a poll), so the
    follower compares change numbers and reads the ended sessions again."""

    number: int | None = None
    ended_sessions: tuple[str, ...] = ()


class Transaction(Protocol):
    """One change under the installation's lock: no other server's change can come
    between what is read here and what is written; all of it or nothing is written."""

    @property
    def number(self) -> int:
        """The newest change number when the lock was taken."""
        ...

    async def load(self) -> Stored:
        """Everything as stored, read under the lock (`created` False)."""
        ...

    async def write(self, change: Change) -> int:
        """Write `change` and its audit entry; the change number after it."""
        ...

    async def delta(self, since: int) -> Delta | None:
        """What the changes after `since` did, read under the lock; None when the record
        of changes does not reach back to `since` (or they touched too many users): then
        `load` everything."""
        ...


# Every table of an installation, as `Store.dump` gives it and `Store.restore` takes it:
# its columns, and its rows in key order, each value as SQLite holds it (text for times,
# integers, reals, None).
Tables = dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]]
# The tables, in the order they are restored (as the PostgreSQL store's `restore` writes them).
TABLE_ORDER = (
    "meta",
    "licenses",
    "users",
    "audit",
    "live_sessions",
    "session_runs",
    "carried_sessions",
    "last_logins",
    "usage_hours",
    "usage_denials",
    "ended_sessions",
)


class Store(Protocol):
    """A durable store. Each `commit` is one atomic, durable transaction."""

    async def open(self, now: datetime, seed: Takeover | None = None) -> Stored:
        """Create or migrate the schema, create the installation on first start (filled
        from `seed`, a takeover, when given: all of it or nothing), load all."""
        ...

    # True when other servers may write the same database (their changes are heard
    # through `follow`); False for a database of this server alone.
    shared: bool
    # How many of the last changes `delta` reaches back over (CHANGES_KEPT).
    changes_kept: int

    async def commit(self, change: Change) -> int:
        """Write one change and its audit entry atomically; nothing of it on failure. The
        change number after it."""
        ...

    def change(self) -> AbstractAsyncContextManager[Transaction]:
        """The installation locked for one change: committed when the block ends, rolled
        back (nothing written) when it raises."""
        ...

    async def load(self) -> Stored:
        """Everything as stored now, one consistent read (`created` False)."""
        ...

    async def change_number(self) -> int:
        """The newest change number (cheap: for a poll)."""
        ...

    async def delta(self, since: int) -> Delta | None:
        """What the changes after `since` did, one consistent read; None when the record
        of changes does not reach back to `since` (or they touched too many users): then
        `load` everything."""
        ...

    def follow(self) -> AsyncIterator[Heard]:
        """What other servers write, as it happens, until the store closes. A store that
        is not shared yields nothing; a shared one also yields `Heard()` now and then
        (a slow poll) and after it lost and regained the database."""
        ...

    async def end_sessions(self, session_ids: Sequence[str], at: datetime) -> None:
        """Write down sessions logged out here, for the other servers (heard by them as
        `Heard.ended_sessions`); kept a day."""
        ...

    async def ended_sessions(self, since: datetime) -> frozenset[str]:
        """The sessions logged out at any server since `since`."""
        ...

    async def installation_value(self, key: str, proposed: str) -> str:
        """A value of the whole installation (the admin token of servers that share the
        database): the one stored under `key`, else `proposed`, stored now."""
        ...

    async def installation_values(self, prefix: str) -> dict[str, str]:
        """Every installation value whose key starts with `prefix`, by key."""
        ...

    async def dump(self) -> Tables:
        """Everything the database holds of the installation, one consistent read (to
        move it to another database: see storage/move.py)."""
        ...

    async def sessions(self) -> EarlierRuns:
        """What earlier runs wrote down of their live sessions."""
        ...

    async def save_sessions(self, flush: SessionFlush) -> None:
        """Write down a batch of sessions begun and ended, atomically."""
        ...

    async def last_logins(self) -> tuple[LastLogin, ...]:
        """The last logins of clients without sessions (3.x, 4.x), as last written down."""
        ...

    async def save_last_logins(self, flush: LastLoginFlush) -> None:
        """Write down a batch of last logins recorded and forgotten, atomically."""
        ...

    async def save_usage(self, hours: Sequence[UsageHour], keep_since: datetime) -> None:
        """Merge a batch of usage hours into the history (peaks by the larger, seats by
        the batch's, counts added) and delete the hours before `keep_since`, atomically."""
        ...

    async def usage(self, since: datetime) -> list[UsageHour]:
        """The usage history's hours from `since` on, in order."""
        ...

    async def audit(self, limit: int) -> list[ChainedRecord]:
        """The newest audit records, newest first."""
        ...

    async def verify_audit(self) -> ChainReport:
        """Check the audit log's hash chain."""
        ...

    async def backup(self, target: Path) -> None:
        """Write a consistent copy of the database to `target` (a new file)."""
        ...

    async def checkpoint(self) -> None:
        """Make the main database file hold every committed change (now and then while
        serving; `close` does it too)."""
        ...

    async def close(self) -> None:
        """Close the database (at a clean stop, after a checkpoint)."""
        ...
