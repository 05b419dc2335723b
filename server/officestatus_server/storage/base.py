"""The storage seam: what the server needs from a database, and nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from officestatus_server.core.audit import ChainedRecord, ChainReport
from officestatus_server.core.model import Change, Installation, User
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


class Store(Protocol):
    """A durable store. Each `commit` is one atomic, durable transaction."""

    async def open(self, now: datetime, seed: Takeover | None = None) -> Stored:
        """Create or migrate the schema, create the installation on first start (filled
        from `seed`, a takeover, when given: all of it or nothing), load all."""
        ...

    async def commit(self, change: Change) -> None:
        """Write one change and its audit entry atomically; nothing of it on failure."""
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
