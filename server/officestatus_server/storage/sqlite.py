"""The SQLite store (aiosqlite): WAL, synchronous=FULL, one transaction per change.

One connection, and one lock around every statement sequence: aiosqlite serialises
statements on its worker thread but does not keep two coroutines' transactions apart.
Schema changes are numbered migrations recorded in PRAGMA user_version; a database
written by a newer server is refused rather than guessed at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import aiosqlite

from officestatus_server.core.audit import (
    GENESIS,
    ChainedRecord,
    ChainReport,
    record_hash,
    verify_chain,
)
from officestatus_server.core.model import AuditEntry, Change
from officestatus_server.core.names import name_key
from officestatus_server.core.sessions import EarlierRuns, SessionFlush
from officestatus_server.core.signed_in import LastLogin, LastLoginFlush
from officestatus_server.core.takeover import Takeover
from officestatus_server.core.usage import UsageHour
from officestatus_server.errors import PreconditionFailed, StorageError
from officestatus_server.storage.base import (
    CHANGES_KEPT,
    TABLE_ORDER,
    Delta,
    Heard,
    Stored,
    Tables,
    numbered,
)
from officestatus_server.storage.rows import NOT_KNOWN as _NOT_KNOWN
from officestatus_server.storage.rows import (
    Row,
    chained_record,
    change_record,
    delta,
    denial_rows,
    earlier_runs,
    last_login_rows,
    last_logins,
    recorded,
    stored,
    takeover_meta,
    usage_hours,
    usage_rows,
)
from officestatus_server.storage.rows import entry as _entry
from officestatus_server.storage.rows import sort_key as _sort_key
from officestatus_server.storage.rows import ts as _ts
from officestatus_server.storage.rows import user_rows as _user_rows

# Each entry moves the schema from version i to i + 1: SQL statements, or a function for
# what SQL alone cannot do. Only ever append.
Migration = tuple[str, ...] | Callable[[aiosqlite.Connection], Awaitable[None]]


async def _chain_existing_audit(conn: aiosqlite.Connection) -> None:
    """v2: hash-chain the audit records written before the chain existed."""
    previous = GENESIS
    count = 0
    async with conn.execute("SELECT id, at, action, subject, result FROM audit ORDER BY id") as cur:
        rows = await cur.fetchall()
    for rid, at, action, subject, result in rows:
        entry = _entry(at, action, subject, result)
        digest = record_hash(entry, int(rid), previous)
        await conn.execute(
            "UPDATE audit SET previous_hash = ?, hash = ? WHERE id = ?", (previous, digest, rid)
        )
        previous, count = digest, count + 1
    await _set_audit_head(conn, previous, count)


MIGRATIONS: tuple[Migration, ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE licenses (
            license_id TEXT PRIMARY KEY,
            key_text TEXT NOT NULL,
            installed_at TEXT NOT NULL)""",
        """CREATE TABLE users (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
            created_at TEXT NOT NULL,
            enabled_at TEXT,
            enable_seq INTEGER UNIQUE)""",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            result TEXT NOT NULL)""",
    ),
    (
        "ALTER TABLE audit ADD COLUMN previous_hash TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE audit ADD COLUMN hash TEXT NOT NULL DEFAULT ''",
    ),
    _chain_existing_audit,
    (
        # The sessions each run wrote down as live (held by the run that last had them),
        # and each run's last batch written: see core/sessions.py.
        """CREATE TABLE live_sessions (
            session_id TEXT PRIMARY KEY,
            holder TEXT NOT NULL) WITHOUT ROWID""",
        """CREATE TABLE session_runs (
            run TEXT PRIMARY KEY,
            flushed_epoch INTEGER NOT NULL)""",
    ),
    (
        # Sessions a takeover carried from a 5.x server, by the id that server gave them:
        # live while they are in live_sessions (see core/sessions.py).
        """CREATE TABLE carried_sessions (
            session_id TEXT PRIMARY KEY,
            user_key TEXT NOT NULL) WITHOUT ROWID""",
    ),
    (
        # Where and since when each live session signed in (officestatus-admin sessions),
        # and the last logins of 3.x and 4.x clients, which hold no session (see
        # core/signed_in.py). `since` is POSIX seconds, 0 when not known.
        "ALTER TABLE live_sessions ADD COLUMN machine TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE live_sessions ADD COLUMN client_version TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE live_sessions ADD COLUMN since REAL NOT NULL DEFAULT 0",
        """CREATE TABLE last_logins (
            user_key TEXT NOT NULL,
            machine TEXT NOT NULL,
            user_name TEXT NOT NULL,
            client_version TEXT NOT NULL,
            release INTEGER NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (user_key, machine)) WITHOUT ROWID""",
    ),
    (
        # The usage history (core/usage.py): one row per UTC hour, `hour` its start in
        # POSIX seconds; `seats` NULL while there is no seat limit (the evaluation). The
        # denied logins of each hour by reason and client release.
        """CREATE TABLE usage_hours (
            hour INTEGER PRIMARY KEY,
            peak_enabled INTEGER NOT NULL,
            peak_sessions INTEGER NOT NULL,
            seats INTEGER,
            granted INTEGER NOT NULL)""",
        """CREATE TABLE usage_denials (
            hour INTEGER NOT NULL,
            reason TEXT NOT NULL,
            release INTEGER NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (hour, reason, release)) WITHOUT ROWID""",
    ),
    (
        # Every change but the clock's high-water mark alone is numbered (storage/base.py
        # `numbered`); sessions logged out, for servers that share a database (a day).
        "INSERT INTO meta (key, value) VALUES ('change_number', '0')",
        """CREATE TABLE ended_sessions (
            session_id TEXT PRIMARY KEY,
            at TEXT NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX ended_sessions_at ON ended_sessions (at)",
    ),
    (
        # The record of the last changes (storage/base.py `Delta`): the users each wrote
        # or deleted (their name keys, a JSON list) and whether it changed a license.
        """CREATE TABLE change_log (
            number INTEGER PRIMARY KEY,
            user_keys TEXT NOT NULL,
            licenses INTEGER NOT NULL)""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
# Every license, in the order installed (as `load` and a delta read them).
_LICENSES = "SELECT license_id, key_text, installed_at FROM licenses ORDER BY rowid"
# What a whole installation holds (the schema as of version 1; later ones only add).
_TABLES = ("meta", "licenses", "users", "audit")
_META_KEYS = ("installation_id", "first_started_at", "session_secret")
_SQLITE_HEADER = b"SQLite format 3\x00"
RESTORE_HINT = (
    "To restore a backup: stop the server, move officestatus.db-wal and "
    "officestatus.db-shm out of the data directory, copy the backup over officestatus.db, "
    "and start the server. To begin a new installation on purpose, move the whole data "
    "directory away first."
)


def _too_new(version: int) -> PreconditionFailed:
    return PreconditionFailed(
        f"The database was written by a newer server (schema {version}; this "
        f"server knows {SCHEMA_VERSION}). Run the newer server, or restore a backup.",
        reason="SCHEMA_TOO_NEW",
    )


def _check_file(path: Path) -> None:
    """Refuse, without opening it, a database file that is empty or not SQLite."""
    with path.open("rb") as f:
        head = f.read(len(_SQLITE_HEADER))
    if not head:
        raise PreconditionFailed(
            f"The database {path} is empty (0 bytes): the installation's data is not in it. "
            f"The server will not start a new installation over it. {RESTORE_HINT}",
            reason="DATABASE_EMPTY",
        )
    if head != _SQLITE_HEADER:
        raise PreconditionFailed(
            f"The database {path} is not an SQLite database. The server will not start on "
            f"it nor change it. {RESTORE_HINT}",
            reason="DATABASE_NOT_SQLITE",
        )


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# How long a logout is kept for other servers (`end_sessions`).
ENDED_KEPT = timedelta(days=1)


class SqliteTransaction:
    """One change under the store's lock and an immediate SQLite transaction."""

    def __init__(self, store: SqliteStore, conn: aiosqlite.Connection, number: int) -> None:
        self._store = store
        self._conn = conn
        self._number = number

    @property
    def number(self) -> int:
        return self._number

    async def load(self) -> Stored:
        return await self._store._load(created=False)

    async def write(self, change: Change) -> int:
        await self._store._write(self._conn, change)
        if numbered(change):
            self._number += 1
            await self._conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'change_number'", (str(self._number),)
            )
            await self._conn.execute(
                "INSERT INTO change_log (number, user_keys, licenses) VALUES (?, ?, ?)",
                (self._number, *change_record(change)),
            )
            await self._conn.execute(
                "DELETE FROM change_log WHERE number <= ?",
                (self._number - self._store.changes_kept,),
            )
        return self._number

    async def delta(self, since: int) -> Delta | None:
        return await self._store._delta(since)


class SqliteStore:
    """The server's state in one SQLite file, of this server alone."""

    shared = False
    # How many changes `delta` can reach back over (a test makes it small).
    changes_kept = CHANGES_KEPT

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError("The database is not open.", reason="STORAGE_CLOSED")
        return self._db

    async def open(self, now: datetime, seed: Takeover | None = None) -> Stored:
        """Open the database, migrate its schema and load everything. A missing file
        becomes a new installation, made whole under another name and then renamed, so it
        appears complete or not at all; an existing file must hold a whole installation
        and is refused, unchanged, when it does not. A `seed` (a takeover of an older
        installation) fills a new installation before it appears; it is ignored when the
        database exists."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = False
            if not self.path.exists():
                await self._create(now, seed)
                created = True
            else:
                _check_file(self.path)
            self._db = await self._connect(self.path)
            await self._check_complete()
            await self._conn.execute("PRAGMA journal_mode=WAL")
            async with self._transaction():
                await self._migrate()
            return await self._load(created)
        except BaseException as exc:
            # An open connection keeps aiosqlite's worker thread, and the process, alive.
            await self.close(checkpoint=False)
            if not isinstance(exc, sqlite3.Error | OSError):
                raise
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StorageError(
                f"Cannot open the database {self.path}: {text}. Check the data directory's "
                "permissions and free space.",
                reason="STORAGE_OPEN_FAILED",
            ) from exc

    @staticmethod
    async def _connect(path: Path) -> aiosqlite.Connection:
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        return db

    async def _create(self, now: datetime, seed: Takeover | None) -> None:
        """A new installation at a temporary name, renamed into place once complete."""
        partial = self.path.with_name(self.path.name + ".new")
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            # A creation that a crash interrupted: it never served, nothing of it counts.
            leftover.unlink(missing_ok=True)
        # Owner-only from the first byte: the file holds the session secret.
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        db = await self._connect(partial)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            self._db = db
            async with self._transaction():
                await self._migrate()
                await self._create_installation(now, seed)
                if seed is not None:
                    await self._seed(db, seed)
            await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db = None
            await db.close()
        _fsync_file(partial)
        os.replace(partial, self.path)
        _fsync_dir(self.path.parent)

    async def _check_complete(self) -> None:
        """Refuse, before writing anything, a database that is not a whole installation."""
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version == 0:
            raise PreconditionFailed(
                f"The database {self.path} holds no OfficeStatus installation (no schema): "
                "its data may have been lost with a deleted officestatus.db-wal after a "
                f"crash. The server will not start a new installation over it. {RESTORE_HINT}",
                reason="DATABASE_INCOMPLETE",
            )
        if version > SCHEMA_VERSION:
            raise _too_new(version)
        async with self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cur:
            tables = {str(r[0]) for r in await cur.fetchall()}
        missing = [t for t in _TABLES if t not in tables]
        if not missing:
            async with self._conn.execute("SELECT key FROM meta") as cur:
                keys = {str(r[0]) for r in await cur.fetchall()}
            missing = [f"the {k} row" for k in _META_KEYS if k not in keys]
        else:
            missing = [f"the {t} table" for t in missing]
        if missing:
            raise PreconditionFailed(
                f"The database {self.path} is missing {', '.join(missing)}: it is not a "
                "whole OfficeStatus installation (damaged, or edited by hand). The server "
                f"will not start on it nor change it. {RESTORE_HINT}",
                reason="DATABASE_INCOMPLETE",
            )

    async def checkpoint(self) -> None:
        """Copy what the WAL holds into the main file (while serving: no waiting)."""
        try:
            async with self._lock:
                await self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            raise StorageError(
                f"The WAL checkpoint failed ({exc}); the data is safe in the WAL.",
                reason="CHECKPOINT_FAILED",
            ) from exc

    async def close(self, *, checkpoint: bool = True) -> None:
        """Close the database; at a clean stop the main file holds every change first."""
        self._closed.set()
        if self._db is not None:
            db, self._db = self._db, None
            if checkpoint:
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await db.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            conn = self._conn
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                await conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT may leave the transaction open: never leave it so.
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise

    async def _migrate(self) -> None:
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise _too_new(version)
        for migration in MIGRATIONS[version:]:
            if callable(migration):
                await migration(self._conn)
                continue
            for statement in migration:
                await self._conn.execute(statement)
        # PRAGMA takes no parameters; SCHEMA_VERSION is our own integer.
        await self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def _create_installation(self, now: datetime, seed: Takeover | None) -> None:
        installation_id = seed.installation.installation_id if seed else str(uuid.uuid4())
        await self._conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("installation_id", installation_id),
                ("first_started_at", now.isoformat()),
                ("session_secret", secrets.token_hex(32)),
            ],
        )

    async def _seed(self, conn: aiosqlite.Connection, seed: Takeover) -> None:
        """What a takeover carries: users, licenses, the old audit records and the
        takeover's, the carried sessions, the old address and heartbeat, the report."""
        await self._write(
            conn, Change(audit=None, add_licenses=seed.licenses, put_users=seed.users)
        )
        for entry in seed.audit:
            await self._append_audit(conn, entry)
        await conn.executemany(
            "INSERT INTO carried_sessions (session_id, user_key) VALUES (?, ?)",
            [(s.session_id, s.user_key) for s in seed.sessions],
        )
        await conn.executemany(
            "INSERT INTO live_sessions (session_id, holder) VALUES (?, 'takeover')",
            [(s.session_id,) for s in seed.sessions],
        )
        await conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            list(takeover_meta(seed).items()),
        )

    async def _load(self, created: bool) -> Stored:
        conn = self._conn
        async with conn.execute("SELECT key, value FROM meta") as cur:
            meta = {str(k): str(v) for k, v in await cur.fetchall()}
        async with conn.execute(_LICENSES) as cur:
            licenses = await cur.fetchall()
        async with conn.execute(
            "SELECT name, enabled, created_at, enabled_at, enable_seq FROM users"
        ) as cur:
            users = await cur.fetchall()
        return stored(meta, licenses, users, created)

    async def commit(self, change: Change) -> int:
        """Write one change and its audit entry atomically; nothing of it on failure."""
        async with self.change() as tx:
            return await tx.write(change)

    @asynccontextmanager
    async def change(self) -> AsyncIterator[SqliteTransaction]:
        """One change under the lock, in one immediate transaction."""
        try:
            async with self._transaction() as conn:
                yield SqliteTransaction(self, conn, await _change_number(conn))
        except sqlite3.Error as exc:
            raise _write_failed(exc) from exc

    async def load(self) -> Stored:
        """Everything as stored now."""
        try:
            async with self._lock:
                return await self._load(created=False)
        except sqlite3.Error as exc:
            raise self._read_failed("the installation", exc) from exc

    async def change_number(self) -> int:
        """The newest change number."""
        try:
            async with self._lock:
                return await _change_number(self._conn)
        except sqlite3.Error as exc:
            raise self._read_failed("the change number", exc) from exc

    async def delta(self, since: int) -> Delta | None:
        """What the changes after `since` did."""
        try:
            async with self._lock:
                return await self._delta(since)
        except sqlite3.Error as exc:
            raise self._read_failed("the last changes", exc) from exc

    async def _delta(self, since: int) -> Delta | None:
        conn = self._conn
        async with conn.execute("SELECT key, value FROM meta") as cur:
            meta = {str(k): str(v) for k, v in await cur.fetchall()}
        number = int(meta.get("change_number", "0"))
        async with conn.execute(
            "SELECT number, user_keys, licenses FROM change_log WHERE number > ? ORDER BY number",
            (since,),
        ) as cur:
            found = recorded(since, number, list(await cur.fetchall()))
        if found is None:
            return None
        keys, licensed = found
        user_rows: list[tuple[str, Row]] = []
        for i in range(0, len(keys), 500):
            batch = keys[i : i + 500]
            async with conn.execute(
                "SELECT name_key, name, enabled, created_at, enabled_at, enable_seq FROM users "
                f"WHERE name_key IN ({', '.join('?' * len(batch))})",
                batch,
            ) as cur:
                user_rows += [(str(r[0]), r[1:]) for r in await cur.fetchall()]
        license_rows = None
        if licensed:
            async with conn.execute(_LICENSES) as cur:
                license_rows = await cur.fetchall()
        return delta(number, meta, keys, user_rows, license_rows)

    async def follow(self) -> AsyncIterator[Heard]:
        """Nothing to hear: no other server writes this file. Ends when the store closes."""
        await self._closed.wait()
        return
        yield  # an async generator that yields nothing

    async def end_sessions(self, session_ids: Sequence[str], at: datetime) -> None:
        """Write down sessions logged out, and forget those kept longer than a day."""
        try:
            async with self._transaction() as conn:
                await conn.executemany(
                    "INSERT OR REPLACE INTO ended_sessions (session_id, at) VALUES (?, ?)",
                    [(s, _ts(at)) for s in session_ids],
                )
                await conn.execute(
                    "DELETE FROM ended_sessions WHERE at < ?", (_ts(at - ENDED_KEPT),)
                )
        except sqlite3.Error as exc:
            raise _write_failed(exc) from exc

    async def ended_sessions(self, since: datetime) -> frozenset[str]:
        """The sessions logged out since `since`."""
        try:
            async with (
                self._lock,
                self._conn.execute(
                    "SELECT session_id FROM ended_sessions WHERE at >= ?", (_ts(since),)
                ) as cur,
            ):
                return frozenset(str(r[0]) for r in await cur.fetchall())
        except sqlite3.Error as exc:
            raise self._read_failed("the ended sessions", exc) from exc

    async def installation_value(self, key: str, proposed: str) -> str:
        """The value stored under `key` (in meta, as `value:<key>`), else `proposed`."""
        try:
            async with self._transaction() as conn:
                await conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                    (f"value:{key}", proposed),
                )
                async with conn.execute(
                    "SELECT value FROM meta WHERE key = ?", (f"value:{key}",)
                ) as cur:
                    row = await cur.fetchone()
        except sqlite3.Error as exc:
            raise _write_failed(exc) from exc
        assert row is not None
        return str(row[0])

    async def installation_values(self, prefix: str) -> dict[str, str]:
        """Every value stored by `installation_value` whose key starts with `prefix`."""
        try:
            async with self._lock, self._conn.execute("SELECT key, value FROM meta") as cur:
                rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise self._read_failed("the installation's values", exc) from exc
        start = f"value:{prefix}"
        return {str(k)[6:]: str(v) for k, v in rows if str(k).startswith(start)}

    async def dump(self) -> Tables:
        """Every table, in one read transaction; licenses in the order installed."""
        tables: Tables = {}
        try:
            async with self._lock:
                await self._conn.execute("BEGIN")
                try:
                    for table in TABLE_ORDER:
                        order = "rowid" if table == "licenses" else "1"
                        async with self._conn.execute(
                            f"SELECT * FROM {table} ORDER BY {order}"
                        ) as cur:
                            columns = tuple(d[0] for d in cur.description)
                            rows = [tuple(r) for r in await cur.fetchall()]
                        if table != "licenses":
                            rows.sort(key=_sort_key)
                        tables[table] = (columns, rows)
                finally:
                    await self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._read_failed("the installation", exc) from exc
        return tables

    def _read_failed(self, what: str, exc: sqlite3.Error) -> StorageError:
        return StorageError(
            f"Cannot read {what} from {self.path.name}: {exc}.", reason="STORAGE_READ_FAILED"
        )

    async def _write(self, conn: aiosqlite.Connection, change: Change) -> None:
        if change.remove_licenses:
            await conn.executemany(
                "DELETE FROM licenses WHERE license_id = ?",
                [(lid,) for lid in change.remove_licenses],
            )
        if change.add_licenses:
            await conn.executemany(
                "INSERT INTO licenses (license_id, key_text, installed_at) VALUES (?, ?, ?)",
                [(x.license_id, x.key_text, _ts(x.installed_at)) for x in change.add_licenses],
            )
        if change.remove_users:
            await conn.executemany(
                "DELETE FROM users WHERE name_key = ?",
                [(name_key(n),) for n in change.remove_users],
            )
        if change.put_users:
            await conn.executemany(
                """INSERT INTO users (name_key, name, enabled, created_at, enabled_at, enable_seq)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (name_key) DO UPDATE SET
                     name = excluded.name, enabled = excluded.enabled,
                     enabled_at = excluded.enabled_at, enable_seq = excluded.enable_seq""",
                _user_rows(change.put_users),
            )
        if change.evaluation_ended_at is not None:
            await conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('evaluation_ended_at', ?)",
                (_ts(change.evaluation_ended_at),),
            )
        if change.clock_high_water is not None:
            await conn.execute(
                """INSERT INTO meta (key, value) VALUES ('clock_high_water', ?)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value
                   WHERE excluded.value > meta.value""",
                (_ts(change.clock_high_water),),
            )
        if change.clock_set_back is not None:
            await conn.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                [
                    ("clock_set_back_seen", _ts(change.clock_set_back.seen)),
                    ("clock_set_back_found", _ts(change.clock_set_back.found)),
                ],
            )
        if change.takeover_report_seen:
            async with conn.execute("SELECT value FROM meta WHERE key = 'took_over'") as cur:
                row = await cur.fetchone()
            if row is not None:
                record = {**json.loads(str(row[0])), "seen": True}
                await conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'took_over'",
                    (json.dumps(record, sort_keys=True),),
                )
        if change.audit is not None:
            await self._append_audit(conn, change.audit)

    async def _append_audit(self, conn: aiosqlite.Connection, entry: AuditEntry) -> None:
        head, count = await _audit_head(conn)
        cur = await conn.execute(
            "INSERT INTO audit (at, action, subject, result) VALUES (?, ?, ?, ?)",
            (_ts(entry.at), entry.action, entry.subject, entry.result),
        )
        rid = cur.lastrowid
        await cur.close()
        assert rid is not None
        digest = record_hash(entry, rid, head)
        await conn.execute(
            "UPDATE audit SET previous_hash = ?, hash = ? WHERE id = ?", (head, digest, rid)
        )
        await _set_audit_head(conn, digest, count + 1)

    async def sessions(self) -> EarlierRuns:
        """What earlier runs wrote down of their live sessions."""
        try:
            async with self._lock:
                async with self._conn.execute(
                    "SELECT session_id, machine, client_version, since FROM live_sessions"
                ) as cur:
                    live = await cur.fetchall()
                async with self._conn.execute("SELECT run, flushed_epoch FROM session_runs") as cur:
                    runs = await cur.fetchall()
                async with self._conn.execute(
                    """SELECT c.session_id, c.user_key FROM carried_sessions c
                       JOIN live_sessions l ON l.session_id = c.session_id"""
                ) as cur:
                    carried = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(
                f"Cannot read the sessions of the last run from {self.path.name}: {exc}.",
                reason="STORAGE_READ_FAILED",
            ) from exc
        return earlier_runs(live, runs, carried)

    async def save_sessions(self, flush: SessionFlush) -> None:
        """Write down a batch of sessions begun and ended, atomically."""
        try:
            async with self._transaction() as conn:
                await conn.executemany(
                    "DELETE FROM live_sessions WHERE session_id = ?", [(s,) for s in flush.ended]
                )
                await conn.executemany(
                    """INSERT OR REPLACE INTO live_sessions
                       (session_id, holder, machine, client_version, since)
                       VALUES (?, ?, ?, ?, ?)""",
                    [(s, flush.run, *flush.seen.get(s, _NOT_KNOWN)) for s in flush.opened],
                )
                if flush.forget_earlier:
                    await conn.execute("DELETE FROM live_sessions WHERE holder != ?", (flush.run,))
                    await conn.execute("DELETE FROM session_runs WHERE run != ?", (flush.run,))
                await conn.execute(
                    """INSERT INTO session_runs (run, flushed_epoch) VALUES (?, ?)
                       ON CONFLICT (run) DO UPDATE SET flushed_epoch = excluded.flushed_epoch""",
                    (flush.run, flush.epoch),
                )
        except sqlite3.Error as exc:
            raise StorageError(
                f"The database refused the sessions' batch ({exc}).",
                reason="STORAGE_WRITE_FAILED",
            ) from exc

    async def last_logins(self) -> tuple[LastLogin, ...]:
        """The last logins of clients without sessions, as last written down."""
        try:
            async with (
                self._lock,
                self._conn.execute(
                    "SELECT user_key, user_name, machine, client_version, release, at "
                    "FROM last_logins ORDER BY at"
                ) as cur,
            ):
                rows = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(
                f"Cannot read the last logins from {self.path.name}: {exc}.",
                reason="STORAGE_READ_FAILED",
            ) from exc
        return last_logins(rows)

    async def save_last_logins(self, flush: LastLoginFlush) -> None:
        """Write down a batch of last logins recorded and forgotten, atomically."""
        try:
            async with self._transaction() as conn:
                await conn.executemany(
                    "DELETE FROM last_logins WHERE user_key = ? AND machine = ?", flush.forgotten
                )
                await conn.executemany(
                    """INSERT OR REPLACE INTO last_logins
                       (user_key, machine, user_name, client_version, release, at)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    last_login_rows(flush),
                )
        except sqlite3.Error as exc:
            raise StorageError(
                f"The database refused the last logins' batch ({exc}).",
                reason="STORAGE_WRITE_FAILED",
            ) from exc

    async def save_usage(self, hours: Sequence[UsageHour], keep_since: datetime) -> None:
        """Merge a batch of usage hours into those stored (peaks by the larger, seats by
        the batch's, counts added) and delete the hours before `keep_since`, atomically."""
        cutoff = int(keep_since.timestamp())
        try:
            async with self._transaction() as conn:
                await conn.executemany(
                    """INSERT INTO usage_hours (hour, peak_enabled, peak_sessions, seats, granted)
                       VALUES (?, ?, ?, ?, ?)
                       ON CONFLICT (hour) DO UPDATE SET
                         peak_enabled = max(peak_enabled, excluded.peak_enabled),
                         peak_sessions = max(peak_sessions, excluded.peak_sessions),
                         seats = excluded.seats,
                         granted = granted + excluded.granted""",
                    usage_rows(hours),
                )
                await conn.executemany(
                    """INSERT INTO usage_denials (hour, reason, release, count) VALUES (?, ?, ?, ?)
                       ON CONFLICT (hour, reason, release) DO UPDATE SET
                         count = count + excluded.count""",
                    denial_rows(hours),
                )
                await conn.execute("DELETE FROM usage_denials WHERE hour < ?", (cutoff,))
                await conn.execute("DELETE FROM usage_hours WHERE hour < ?", (cutoff,))
        except sqlite3.Error as exc:
            raise StorageError(
                f"The database refused the usage history's batch ({exc}).",
                reason="STORAGE_WRITE_FAILED",
            ) from exc

    async def usage(self, since: datetime) -> list[UsageHour]:
        """The usage hours from `since` on, in order."""
        start = int(since.timestamp())
        try:
            async with self._lock:
                async with self._conn.execute(
                    "SELECT hour, peak_enabled, peak_sessions, seats, granted FROM usage_hours "
                    "WHERE hour >= ? ORDER BY hour",
                    (start,),
                ) as cur:
                    rows = await cur.fetchall()
                async with self._conn.execute(
                    "SELECT hour, reason, release, count FROM usage_denials WHERE hour >= ?",
                    (start,),
                ) as cur:
                    denials = await cur.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(
                f"Cannot read the usage history from {self.path.name}: {exc}.",
                reason="STORAGE_READ_FAILED",
            ) from exc
        return usage_hours(rows, denials)

    async def audit(self, limit: int) -> list[ChainedRecord]:
        """The newest audit records, newest first."""
        async with self._lock:
            rows = await self._audit_rows(
                "SELECT id, at, action, subject, result, previous_hash, hash FROM audit "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return rows

    async def verify_audit(self) -> ChainReport:
        """Check the whole audit chain against the head and count recorded with it."""
        async with self._lock:
            rows = await self._audit_rows(
                "SELECT id, at, action, subject, result, previous_hash, hash FROM audit "
                "ORDER BY id",
                (),
            )
            head, count = await _audit_head(self._conn)
        return verify_chain(rows, head, count)

    async def _audit_rows(self, sql: str, args: tuple[object, ...]) -> list[ChainedRecord]:
        async with self._conn.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [chained_record(r) for r in rows]

    async def backup(self, target: Path) -> None:
        """A consistent copy of the database at `target` (SQLite online backup), while the
        server keeps running; owner-only."""
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        try:
            async with self._lock, aiosqlite.connect(target) as copy:
                await self._conn.backup(copy)
                await copy.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            target.unlink(missing_ok=True)  # noqa: ASYNC240 (one small unlink, on failure)
            raise StorageError(
                f"The backup failed ({exc}); the database itself is untouched.",
                reason="BACKUP_FAILED",
            ) from exc


def _write_failed(exc: sqlite3.Error) -> StorageError:
    return StorageError(
        f"The database refused the change ({exc}); nothing was changed.",
        reason="STORAGE_WRITE_FAILED",
    )


async def _change_number(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT value FROM meta WHERE key = 'change_number'") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _audit_head(conn: aiosqlite.Connection) -> tuple[str, int]:
    async with conn.execute(
        "SELECT key, value FROM meta WHERE key IN ('audit_head', 'audit_count')"
    ) as cur:
        meta = {str(k): str(v) for k, v in await cur.fetchall()}
    return meta.get("audit_head", GENESIS), int(meta.get("audit_count", "0"))


async def _set_audit_head(conn: aiosqlite.Connection, head: str, count: int) -> None:
    await conn.executemany(
        """INSERT INTO meta (key, value) VALUES (?, ?)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
        [("audit_head", head), ("audit_count", str(count))],
    )
