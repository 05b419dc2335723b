"""The prepared databases: licenses and users written through the storage API before the
server starts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from officestatus_server.config import ServerConfig
from officestatus_server.core.keys import LicenseKey, LicenseKind, SigningKey, sign_key
from officestatus_server.core.model import AuditEntry, Change, InstalledLicense, User
from officestatus_server.storage.sqlite import SqliteStore


def user_name(i: int) -> str:
    """The i-th bench user, from 1."""
    return f"user{i:06d}"


def _new_database(data_dir: Path) -> Path:
    """Make an owner-only data directory; the path of its database."""
    data_dir.mkdir(mode=0o700, parents=True)
    return ServerConfig(data_dir=data_dir).database_path


async def prepare_database(
    data_dir: Path, signing: SigningKey, users: int, licenses: int, seats: int, enabled: int
) -> None:
    """Write licenses and users through the storage API, before the server starts.

    The first `enabled` users are enabled in order; the evaluation is over, so the seat
    rules apply to every login."""
    now = datetime.now(UTC)
    installed = []
    for i in range(1, licenses + 1):
        key = LicenseKey(
            signing_key_id=signing.key_id,
            license_id=f"BENCH-{i:05d}",
            major_version=6,
            seats=seats,
            kind=LicenseKind.PURCHASED,
            customer="Bench Ltd",
            purchase_date=now.date(),
            issue_date=now.date(),
        )
        installed.append(
            InstalledLicense(key.license_id, sign_key(key, signing.private_key), now, key)
        )
    people = tuple(
        User(user_name(i), True, now, now, i) if i <= enabled else User(user_name(i), False, now)
        for i in range(1, users + 1)
    )
    store = SqliteStore(_new_database(data_dir))
    await store.open(now)
    try:
        await store.commit(
            Change(
                audit=AuditEntry(
                    now, "bench.prepare", f"{users} users", f"{licenses} licenses of {seats} seats"
                ),
                add_licenses=tuple(installed),
                put_users=people,
                evaluation_ended_at=now,
            )
        )
    finally:
        await store.close()
