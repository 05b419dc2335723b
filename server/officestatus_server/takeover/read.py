"""Reading an older server's `licsrv.db` without changing a byte of it.

The old database is read from a consistent copy: SQLite's backup of a read-only
connection, or, when the old server left a hot journal (it was killed mid-change), a copy
of the file and its journal that SQLite then rolls back in the copy. The original and its
journal are never opened for writing, so going back is "stop 6.x, start the old server".
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from officestatus_server.core.legacy import (
    RELEASES,
    LegacyAudit,
    LegacyServer,
    LegacySession,
    LegacyUser,
)
from officestatus_server.errors import PreconditionFailed

DATABASE = "licsrv.db"
JOURNAL = "licsrv.db-journal"
# How long a read waits for an old server's write lock before calling it running.
BUSY_SECONDS = 2.0
# Table: the columns each release has (a release has those of the ones before).
COLUMNS: dict[int, dict[str, tuple[str, ...]]] = {
    3: {
        "server": ("installation_id", "installed_at", "port"),
        "licenses": ("license_key", "added_at"),
        "users": ("name", "enabled", "added_at"),
    },
    4: {
        "server": ("listen_host",),
        "users": ("enabled_at",),
        "evaluation_extensions": ("license_key", "added_at"),
        "audit": ("id", "at", "actor", "action", "detail"),
    },
    5: {
        "server": ("heartbeat_seconds",),
        "sessions": (
            "session_id",
            "user_name",
            "client_version",
            "machine_name",
            "started_at",
            "last_seen_at",
        ),
    },
}


def _refused(path: Path, found: str, reason: str) -> PreconditionFailed:
    return PreconditionFailed(
        f"Cannot take over the older installation at {path}: {found}. Nothing was written; "
        "the old server's files are unchanged.",
        reason=reason,
    )


def needed_columns(release: int) -> dict[str, set[str]]:
    """Every table and column a database of this release has."""
    tables: dict[str, set[str]] = {}
    for r in RELEASES:
        if r > release:
            break
        for table, columns in COLUMNS[r].items():
            tables.setdefault(table, set()).update(columns)
    return tables


@contextlib.contextmanager
def consistent_copy(directory: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a private, consistent copy of the old database."""
    source = directory / DATABASE
    with tempfile.TemporaryDirectory(prefix="officestatus-takeover-") as tmp:
        copy = Path(tmp) / DATABASE
        try:
            _backup(source, copy)
        except _HotJournal:
            shutil.copyfile(source, copy)
            shutil.copyfile(directory / JOURNAL, Path(tmp) / JOURNAL)
        db = sqlite3.connect(copy)
        try:
            # Opening the copy rolls its journal back, as the old server would have.
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            yield db
        except sqlite3.DatabaseError as exc:
            raise _refused(source, f"it cannot be read ({exc})", "UPGRADE_SOURCE_INVALID") from None
        finally:
            db.close()


class _HotJournal(Exception):
    pass


def _backup(source: Path, copy: Path) -> None:
    if not source.is_file():
        raise _refused(source, "there is no such file", "UPGRADE_SOURCE_MISSING")
    with source.open("rb") as f:
        header = f.read(16)
    if header != b"SQLite format 3\x00":
        raise _refused(
            source,
            "it is not an SQLite database (3.x-5.x servers keep one)",
            "UPGRADE_SOURCE_INVALID",
        )
    src = sqlite3.connect(
        f"file:{source}?mode=ro", uri=True, timeout=BUSY_SECONDS, isolation_level=None
    )
    try:
        # A read transaction first: it waits out a write lock for BUSY_SECONDS at most (the
        # backup itself would retry for ever), and holds the snapshot the backup copies.
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
        finally:
            dst.close()
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_READONLY_ROLLBACK":
            raise _HotJournal from None
        if getattr(exc, "sqlite_errorname", "") in {"SQLITE_BUSY", "SQLITE_LOCKED"}:
            raise _refused(
                source,
                "the database is locked, so the old server is still running. Stop the old "
                "OfficeStatus Server service, then start this server again",
                "UPGRADE_SOURCE_IN_USE",
            ) from None
        raise _refused(source, f"it cannot be read ({exc})", "UPGRADE_SOURCE_INVALID") from None
    except sqlite3.DatabaseError as exc:
        raise _refused(source, f"it cannot be read ({exc})", "UPGRADE_SOURCE_INVALID") from None
    finally:
        src.close()


def read_legacy(directory: Path) -> LegacyServer:
    """The old installation in `directory`, checked against its release's schema."""
    path = directory / DATABASE
    with consistent_copy(directory) as db:
        release = int(db.execute("PRAGMA user_version").fetchone()[0])
        if release not in RELEASES:
            raise _refused(
                path,
                f"its schema number (user_version) is {release}, and 3.x, 4.x and 5.x servers "
                "write 3, 4 or 5",
                "UPGRADE_SOURCE_UNKNOWN_RELEASE",
            )
        missing = _missing(db, release)
        if missing:
            raise _refused(
                path,
                f"it is a {release}.x database without {', '.join(missing)}",
                "UPGRADE_SOURCE_INCOMPLETE",
            )
        try:
            return _rows(db, release)
        except (ValueError, TypeError) as exc:
            raise _refused(
                path, f"a value in it cannot be read ({exc})", "UPGRADE_SOURCE_INVALID"
            ) from None


def _missing(db: sqlite3.Connection, release: int) -> list[str]:
    missing: list[str] = []
    for table, columns in sorted(needed_columns(release).items()):
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not have:
            missing.append(f"the table {table}")
            continue
        missing += [f"the column {table}.{c}" for c in sorted(columns - have)]
    return missing


def sql_time(text: object) -> datetime:
    """SQLite's `YYYY-MM-DD HH:MM:SS` (UTC) as an aware datetime."""
    if not isinstance(text, str):
        raise TypeError(f"a time is {type(text).__name__}, not text")
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _rows(db: sqlite3.Connection, release: int) -> LegacyServer:
    server_rows = db.execute("SELECT * FROM server").fetchall()
    if len(server_rows) != 1:
        raise ValueError(f"the server table has {len(server_rows)} rows, not one")
    cols = [d[0] for d in db.execute("SELECT * FROM server").description]
    server = dict(zip(cols, server_rows[0], strict=True))
    users = tuple(
        LegacyUser(
            rowid=int(r[0]),
            name=str(r[1]),
            enabled=bool(r[2]),
            added_at=sql_time(r[3]),
            enabled_at=sql_time(r[4]) if release >= 4 and r[4] is not None else None,
        )
        for r in db.execute(
            "SELECT rowid, name, enabled, added_at"
            + (", enabled_at" if release >= 4 else ", NULL")
            + " FROM users ORDER BY rowid"
        )
    )
    licenses = tuple(
        str(r[0]) for r in db.execute("SELECT license_key FROM licenses ORDER BY rowid")
    )
    extensions: tuple[str, ...] = ()
    audit: tuple[LegacyAudit, ...] = ()
    sessions: tuple[LegacySession, ...] = ()
    if release >= 4:
        extensions = tuple(
            str(r[0])
            for r in db.execute("SELECT license_key FROM evaluation_extensions ORDER BY rowid")
        )
        audit = tuple(
            LegacyAudit(int(r[0]), sql_time(r[1]), str(r[2]), str(r[3]), str(r[4]))
            for r in db.execute("SELECT id, at, actor, action, detail FROM audit ORDER BY id")
        )
    if release >= 5:
        sessions = tuple(
            LegacySession(
                str(r[0]), str(r[1]), str(r[2]), str(r[3]), sql_time(r[4]), sql_time(r[5])
            )
            for r in db.execute(
                "SELECT session_id, user_name, client_version, machine_name, started_at, "
                "last_seen_at FROM sessions ORDER BY rowid"
            )
        )
    return LegacyServer(
        release=release,
        installation_id=str(server["installation_id"]),
        installed_at=sql_time(server["installed_at"]),
        port=int(server["port"]),
        listen_host=server.get("listen_host"),
        heartbeat_seconds=int(server["heartbeat_seconds"]) if release >= 5 else None,
        users=users,
        license_keys=licenses,
        extension_keys=extensions,
        audit=audit,
        sessions=sessions,
    )
