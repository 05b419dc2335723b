"""The storage seam: what the server needs from a database, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from officestatus_server.core.model import AuditEntry, Change, Installation, User


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


class Store(Protocol):
    """A durable store. Each `commit` is one atomic, durable transaction."""

    async def open(self, now: datetime) -> Stored:
        """Create or migrate the schema, create the installation on first start, load all."""
        ...

    async def commit(self, change: Change) -> None:
        """Write one change and its audit entry atomically; nothing of it on failure."""
        ...

    async def audit(self, limit: int) -> list[AuditEntry]:
        """The newest audit entries, newest first."""
        ...

    async def close(self) -> None:
        """Close the database."""
        ...
