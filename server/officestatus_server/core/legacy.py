"""What a 3.x, 4.x or 5.x server kept, as read from its `licsrv.db`: plain values.

The rows are as the old release wrote them (names as typed, times as UTC); the rules of
what becomes of them on 6.x are in `core.takeover`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The schema numbers (`PRAGMA user_version`) of the releases a takeover reads.
RELEASES = (3, 4, 5)


@dataclass(frozen=True)
class LegacyUser:
    """A row of `users`, in rowid order."""

    rowid: int
    name: str
    enabled: bool
    added_at: datetime
    # 4.x/5.x: when last enabled; None for users enabled under 3.x, and disabled users.
    enabled_at: datetime | None = None


@dataclass(frozen=True)
class LegacyAudit:
    """A row of `audit` (4.x/5.x), in id order."""

    record_id: int
    at: datetime
    actor: str
    action: str
    detail: str


@dataclass(frozen=True)
class LegacySession:
    """A row of `sessions` (5.x)."""

    session_id: str
    user_name: str
    client_version: str
    machine_name: str
    started_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class LegacyServer:
    """Everything one older installation holds."""

    release: int
    installation_id: str
    installed_at: datetime
    port: int
    # 4.x/5.x: None means all interfaces (as 3.x always listened).
    listen_host: str | None
    # 5.x only.
    heartbeat_seconds: int | None
    users: tuple[LegacyUser, ...]
    license_keys: tuple[str, ...]
    extension_keys: tuple[str, ...]
    audit: tuple[LegacyAudit, ...]
    sessions: tuple[LegacySession, ...]

    @property
    def listen(self) -> str:
        """The address it listened on, as `host:port`."""
        host = self.listen_host or "0.0.0.0"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"
