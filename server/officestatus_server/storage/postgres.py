"""The PostgreSQL store (asyncpg): one installation that several servers share.

Every change is one transaction holding the installation's lock (a transaction-scoped
advisory lock), so no other server's change comes between what a server read and what
it writes; the change number and the audit chain's head move under the same lock, and
the commit notifies the other servers (LISTEN/NOTIFY on `officestatus`). Values are kept
as the SQLite store keeps them (times as ISO text), so an installation moves between the
two row for row (storage/move.py). Schema changes are numbered migrations recorded in
`schema_version`; a schema newer than this server knows is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

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
from officestatus_server.errors import (
    LicenseServerError,
    PreconditionFailed,
    StorageError,
    StorageUnavailable,
)
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
    user_row,
)
from officestatus_server.storage.rows import sort_key as _sort_key
from officestatus_server.storage.rows import ts as _ts

# The installation's lock: one advisory lock key for every change and for the schema.
LOCK_KEY = 0x0FF1C5
CHANNEL = "officestatus"
# Every call waits this long at most: an unreachable database never hangs a caller.
TIMEOUT_SECONDS = 5.0
# The follower's last resort: a poll this often, and a reconnect after a lost connection.
POLL_SECONDS = 5.0
RECONNECT_SECONDS = 1.0
ENDED_KEPT = timedelta(days=1)
# A run that has not written its sessions down for this long is gone (a live server does
# every minute): what it wrote of its sessions is deleted. Its clients' sessions are not
# ended by this: a server over the database still resumes one that comes back.
RUN_GONE_AFTER = timedelta(days=1)
# A notice's payload stays well under PostgreSQL's 8000 bytes.
_PAYLOAD_BYTES = 7000

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version (version) VALUES (0)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE licenses (
            license_id TEXT PRIMARY KEY,
            key_text TEXT NOT NULL,
            installed_at TEXT NOT NULL,
            seq BIGSERIAL NOT NULL)""",
        """CREATE TABLE users (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
            created_at TEXT NOT NULL,
            enabled_at TEXT,
            enable_seq BIGINT UNIQUE)""",
        """CREATE TABLE audit (
            id BIGINT PRIMARY KEY,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            result TEXT NOT NULL,
            previous_hash TEXT NOT NULL,
            hash TEXT NOT NULL)""",
        """CREATE TABLE live_sessions (
            session_id TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            machine TEXT NOT NULL DEFAULT '',
            client_version TEXT NOT NULL DEFAULT '',
            since DOUBLE PRECISION NOT NULL DEFAULT 0)""",
        "CREATE TABLE session_runs (run TEXT PRIMARY KEY, flushed_epoch BIGINT NOT NULL)",
        "CREATE TABLE carried_sessions (session_id TEXT PRIMARY KEY, user_key TEXT NOT NULL)",
        """CREATE TABLE last_logins (
            user_key TEXT NOT NULL,
            machine TEXT NOT NULL,
            user_name TEXT NOT NULL,
            client_version TEXT NOT NULL,
            release INTEGER NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (user_key, machine))""",
        """CREATE TABLE usage_hours (
            hour BIGINT PRIMARY KEY,
            peak_enabled BIGINT NOT NULL,
            peak_sessions BIGINT NOT NULL,
            seats BIGINT,
            granted BIGINT NOT NULL)""",
        """CREATE TABLE usage_denials (
            hour BIGINT NOT NULL,
            reason TEXT NOT NULL,
            release INTEGER NOT NULL,
            count BIGINT NOT NULL,
            PRIMARY KEY (hour, reason, release))""",
        "CREATE TABLE ended_sessions (session_id TEXT PRIMARY KEY, at TEXT NOT NULL)",
        "CREATE INDEX ended_sessions_at ON ended_sessions (at)",
    ),
    # 2: when each run last wrote its sessions down (the database's clock), so that the
    # sessions of a server that is gone are not kept for ever.
    ("ALTER TABLE session_runs ADD COLUMN flushed_at TIMESTAMPTZ NOT NULL DEFAULT now()",),
    # 3: the record of the last changes (storage/base.py `Delta`), as SQLite's.
    (
        """CREATE TABLE change_log (
            number BIGINT PRIMARY KEY,
            user_keys TEXT NOT NULL,
            licenses INTEGER NOT NULL)""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
# Every license, in the order installed (as `load` and a delta read them).
_LICENSES = "SELECT license_id, key_text, installed_at FROM licenses ORDER BY seq"
# What each table holds, as the SQLite store's columns (the order of a dump).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "licenses": ("license_id", "key_text", "installed_at"),
    "users": ("name_key", "name", "enabled", "created_at", "enabled_at", "enable_seq"),
    "audit": ("id", "at", "action", "subject", "result", "previous_hash", "hash"),
    "live_sessions": ("session_id", "holder", "machine", "client_version", "since"),
    "session_runs": ("run", "flushed_epoch"),
    "carried_sessions": ("session_id", "user_key"),
    "last_logins": ("user_key", "machine", "user_name", "client_version", "release", "at"),
    "usage_hours": ("hour", "peak_enabled", "peak_sessions", "seats", "granted"),
    "usage_denials": ("hour", "reason", "release", "count"),
    "ended_sessions": ("session_id", "at"),
}
_UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
)

T = TypeVar("T")


def shown(url: str) -> str:
    """The database as a person may see it: host, port and name, no password."""
    scheme, _, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0] if at else ""
    return f"{scheme}://{user + '@' if user else ''}{host}"


class PostgresTransaction:
    """One change under the installation's lock, in one transaction."""

    def __init__(self, store: PostgresStore, conn: asyncpg.Connection, number: int) -> None:
        self._store = store
        self._conn = conn
        self._number = number
        self.notify = False

    @property
    def number(self) -> int:
        return self._number

    async def load(self) -> Stored:
        return await _load(self._conn, created=False)

    async def write(self, change: Change) -> int:
        await _write(self._conn, change)
        if numbered(change):
            self._number += 1
            await self._conn.execute(
                "UPDATE meta SET value = $1 WHERE key = 'change_number'", str(self._number)
            )
            await self._conn.execute(
                "INSERT INTO change_log (number, user_keys, licenses) VALUES ($1, $2, $3)",
                self._number,
                *change_record(change),
            )
            await self._conn.execute(
                "DELETE FROM change_log WHERE number <= $1",
                self._number - self._store.changes_kept,
            )
            self.notify = True
        return self._number

    async def delta(self, since: int) -> Delta | None:
        return await _delta(self._conn, since)


class PostgresStore:
    """The installation in a PostgreSQL database that several servers may share."""

    shared = True
    # How many changes `delta` can reach back over (a test makes it small).
    changes_kept = CHANGES_KEPT

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None
        self._closed = asyncio.Event()

    # --- plumbing ---------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> StorageUnavailable:
        return StorageUnavailable(
            f"The database {shown(self.url)} is unreachable ({type(exc).__name__}: {exc}); "
            "the change was not made. Logins and heartbeats go on from memory; try the "
            "change again when PostgreSQL is back.",
        )

    def _failed(self, exc: BaseException) -> StorageError:
        return StorageError(
            f"The database {shown(self.url)} refused the call ({exc}); nothing was changed.",
            reason="STORAGE_WRITE_FAILED",
        )

    @property
    def _open_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError("The database is not open.", reason="STORAGE_CLOSED")
        return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self._open_pool.acquire(timeout=TIMEOUT_SECONDS) as conn:
                yield conn
        except LicenseServerError:
            raise
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        except asyncpg.PostgresError as exc:
            raise self._failed(exc) from exc

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction holding the installation's lock."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            yield conn

    async def _read(self, work: Callable[[asyncpg.Connection], Any]) -> Any:
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read"):
            return await work(conn)

    # --- life cycle -------------------------------------------------------------------

    async def open(self, now: datetime, seed: Takeover | None = None) -> Stored:
        """Connect, migrate the schema and create the installation if the database holds
        none (filled from `seed`, a takeover, when given); a database that holds one is
        joined and `seed` ignored."""
        await self.connect()
        try:
            async with self._locked() as conn:
                await self._migrate(conn)
                created = await conn.fetchval("SELECT count(*) FROM meta") == 0
                if created:
                    await _create_installation(conn, now, seed)
                return await _load(conn, created)
        except BaseException:
            await self.close()
            raise

    async def connect(self) -> None:
        """Connect only (`open` does, and `restore` needs no more)."""
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=4,
                timeout=TIMEOUT_SECONDS,
                command_timeout=TIMEOUT_SECONDS * 6,
            )
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        except asyncpg.PostgresError as exc:
            raise StorageError(
                f"Cannot open the database {shown(self.url)}: {exc}. Check the URL, the "
                "user's rights and that the database exists.",
                reason="STORAGE_OPEN_FAILED",
            ) from exc

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
        version = int(await conn.fetchval("SELECT version FROM schema_version")) if exists else 0
        if version > SCHEMA_VERSION:
            raise PreconditionFailed(
                f"The database {shown(self.url)} was written by a newer server (schema "
                f"{version}; this server knows {SCHEMA_VERSION}). Run the newer server.",
                reason="SCHEMA_TOO_NEW",
            )
        for migration in MIGRATIONS[version:]:
            for statement in migration:
                await conn.execute(statement)
        await conn.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION)

    async def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL keeps its own files (refused when not open)."""
        self._open_pool  # noqa: B018 (refused when not open)

    async def close(self) -> None:
        """Close every connection."""
        self._closed.set()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), TIMEOUT_SECONDS)
            pool.terminate()

    # --- changes ----------------------------------------------------------------------

    async def commit(self, change: Change) -> int:
        async with self.change() as tx:
            return await tx.write(change)

    @asynccontextmanager
    async def change(self) -> AsyncIterator[PostgresTransaction]:
        async with self._locked() as conn:
            number = int(await conn.fetchval("SELECT value FROM meta WHERE key = 'change_number'"))
            tx = PostgresTransaction(self, conn, number)
            yield tx
            if tx.notify:  # sent at the commit, only if it commits
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(tx.number))

    async def load(self) -> Stored:
        stored: Stored = await self._read(lambda conn: _load(conn, created=False))
        return stored

    async def delta(self, since: int) -> Delta | None:
        """What the changes after `since` did."""
        found: Delta | None = await self._read(lambda conn: _delta(conn, since))
        return found

    async def change_number(self) -> int:
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT value FROM meta WHERE key = 'change_number'"))

    async def follow(self) -> AsyncIterator[Heard]:
        """Notices as they come, a `Heard()` every POLL_SECONDS and after a reconnect."""
        queue: asyncio.Queue[str] = asyncio.Queue()

        def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            queue.put_nowait(payload)

        conn: asyncpg.Connection | None = None
        lost = False
        try:
            while not self._closed.is_set():
                if conn is None or conn.is_closed():
                    try:
                        conn = await asyncpg.connect(self.url, timeout=TIMEOUT_SECONDS)
                        await conn.add_listener(CHANNEL, heard)
                    except (*_UNREACHABLE, asyncpg.PostgresError):
                        conn, lost = None, True
                        await asyncio.sleep(RECONNECT_SECONDS)
                        continue
                    if lost:
                        lost = False
                        yield Heard()
                try:
                    payload = await asyncio.wait_for(queue.get(), POLL_SECONDS)
                except TimeoutError:
                    lost = lost or conn.is_closed()
                    yield Heard()
                    continue
                if payload.startswith("e:"):
                    yield Heard(ended_sessions=tuple(payload[2:].split(",")))
                elif payload.isdigit():
                    yield Heard(number=int(payload))
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), TIMEOUT_SECONDS)

    async def end_sessions(self, session_ids: Sequence[str], at: datetime) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.executemany(
                """INSERT INTO ended_sessions (session_id, at) VALUES ($1, $2)
                   ON CONFLICT (session_id) DO UPDATE SET at = excluded.at""",
                [(s, _ts(at)) for s in session_ids],
            )
            await conn.execute("DELETE FROM ended_sessions WHERE at < $1", _ts(at - ENDED_KEPT))
            batch: list[str] = []
            for session_id in session_ids:
                if sum(len(s) + 1 for s in batch) + len(session_id) > _PAYLOAD_BYTES:
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, "e:" + ",".join(batch))
                    batch = []
                batch.append(session_id)
            if batch:
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, "e:" + ",".join(batch))

    async def ended_sessions(self, since: datetime) -> frozenset[str]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT session_id FROM ended_sessions WHERE at >= $1", _ts(since)
            )
        return frozenset(str(r[0]) for r in rows)

    async def installation_value(self, key: str, proposed: str) -> str:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                f"value:{key}",
                proposed,
            )
            return str(await conn.fetchval("SELECT value FROM meta WHERE key = $1", f"value:{key}"))

    async def installation_values(self, prefix: str) -> dict[str, str]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT key, value FROM meta WHERE starts_with(key, $1)", f"value:{prefix}"
            )
        return {str(k)[6:]: str(v) for k, v in rows}

    # --- sessions, last logins, usage -------------------------------------------------

    async def sessions(self) -> EarlierRuns:
        async def read(conn: asyncpg.Connection) -> EarlierRuns:
            return earlier_runs(
                await conn.fetch(
                    "SELECT session_id, machine, client_version, since FROM live_sessions"
                ),
                await conn.fetch("SELECT run, flushed_epoch FROM session_runs"),
                await conn.fetch(
                    """SELECT c.session_id, c.user_key FROM carried_sessions c
                       JOIN live_sessions l ON l.session_id = c.session_id"""
                ),
            )

        earlier: EarlierRuns = await self._read(read)
        return earlier

    async def save_sessions(self, flush: SessionFlush) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.executemany(
                "DELETE FROM live_sessions WHERE session_id = $1", [(s,) for s in flush.ended]
            )
            await conn.executemany(
                """INSERT INTO live_sessions (session_id, holder, machine, client_version, since)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (session_id) DO UPDATE SET holder = excluded.holder,
                     machine = excluded.machine, client_version = excluded.client_version,
                     since = excluded.since""",
                [(s, flush.run, *flush.seen.get(s, _NOT_KNOWN)) for s in flush.opened],
            )
            if flush.forget_earlier:
                await conn.execute("DELETE FROM live_sessions WHERE holder != $1", flush.run)
                await conn.execute("DELETE FROM session_runs WHERE run != $1", flush.run)
            await conn.execute(
                """INSERT INTO session_runs (run, flushed_epoch, flushed_at) VALUES ($1, $2, now())
                   ON CONFLICT (run) DO UPDATE SET flushed_epoch = excluded.flushed_epoch,
                     flushed_at = excluded.flushed_at""",
                flush.run,
                flush.epoch,
            )
            gone = await conn.fetch(
                "DELETE FROM session_runs WHERE flushed_at < now() - $1::interval RETURNING run",
                RUN_GONE_AFTER,
            )
            await conn.execute(
                "DELETE FROM live_sessions WHERE holder = ANY($1::text[])", [r[0] for r in gone]
            )

    async def last_logins(self) -> tuple[LastLogin, ...]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT user_key, user_name, machine, client_version, release, at "
                "FROM last_logins ORDER BY at"
            )
        return last_logins(rows)

    async def save_last_logins(self, flush: LastLoginFlush) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.executemany(
                "DELETE FROM last_logins WHERE user_key = $1 AND machine = $2", flush.forgotten
            )
            await conn.executemany(
                """INSERT INTO last_logins
                   (user_key, machine, user_name, client_version, release, at)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (user_key, machine) DO UPDATE SET
                     user_name = excluded.user_name, client_version = excluded.client_version,
                     release = excluded.release, at = excluded.at""",
                last_login_rows(flush),
            )

    async def save_usage(self, hours: Sequence[UsageHour], keep_since: datetime) -> None:
        cutoff = int(keep_since.timestamp())
        async with self._connection() as conn, conn.transaction():
            await conn.executemany(
                """INSERT INTO usage_hours (hour, peak_enabled, peak_sessions, seats, granted)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (hour) DO UPDATE SET
                     peak_enabled = greatest(usage_hours.peak_enabled, excluded.peak_enabled),
                     peak_sessions = greatest(usage_hours.peak_sessions, excluded.peak_sessions),
                     seats = excluded.seats,
                     granted = usage_hours.granted + excluded.granted""",
                usage_rows(hours),
            )
            await conn.executemany(
                """INSERT INTO usage_denials (hour, reason, release, count)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT (hour, reason, release) DO UPDATE SET
                     count = usage_denials.count + excluded.count""",
                denial_rows(hours),
            )
            await conn.execute("DELETE FROM usage_denials WHERE hour < $1", cutoff)
            await conn.execute("DELETE FROM usage_hours WHERE hour < $1", cutoff)

    async def usage(self, since: datetime) -> list[UsageHour]:
        start = int(since.timestamp())

        async def read(conn: asyncpg.Connection) -> tuple[list[Any], list[Any]]:
            hours = await conn.fetch(
                "SELECT hour, peak_enabled, peak_sessions, seats, granted FROM usage_hours "
                "WHERE hour >= $1 ORDER BY hour",
                start,
            )
            denied = await conn.fetch(
                "SELECT hour, reason, release, count FROM usage_denials WHERE hour >= $1", start
            )
            return list(hours), list(denied)

        rows, denials = await self._read(read)
        return usage_hours(rows, denials)

    # --- the audit log, backups, moving ------------------------------------------------

    async def audit(self, limit: int) -> list[ChainedRecord]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT id, at, action, subject, result, previous_hash, hash FROM audit "
                "ORDER BY id DESC LIMIT $1",
                limit,
            )
        return [chained_record(r) for r in rows]

    async def verify_audit(self) -> ChainReport:
        async def read(conn: asyncpg.Connection) -> ChainReport:
            rows = await conn.fetch(
                "SELECT id, at, action, subject, result, previous_hash, hash FROM audit ORDER BY id"
            )
            head, count = await _audit_head(conn)
            return verify_chain([chained_record(r) for r in rows], head, count)

        report: ChainReport = await self._read(read)
        return report

    async def backup(self, target: Path) -> None:
        self._open_pool  # noqa: B018 (refused when not open)
        raise PreconditionFailed(
            f"The installation is in PostgreSQL ({shown(self.url)}): back it up with "
            "PostgreSQL's own tools (pg_dump, or a standby), not with this command.",
            reason="BACKUP_USE_PG_DUMP",
        )

    async def dump(self) -> Tables:
        async def read(conn: asyncpg.Connection) -> Tables:
            tables: Tables = {}
            for table in TABLE_ORDER:
                columns = _COLUMNS[table]
                order = "seq" if table == "licenses" else ", ".join(columns)
                rows = await conn.fetch(
                    f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"
                )
                found = [tuple(r) for r in rows]
                if table != "licenses":
                    found.sort(key=_sort_key)
                tables[table] = (columns, found)
            return tables

        tables: Tables = await self._read(read)
        return tables

    async def restore(self, tables: Tables) -> None:
        """Fill this database, which must hold no installation, with `tables` (a dump
        of another store), in one transaction; refused, nothing written, otherwise."""
        async with self._locked() as conn:
            await self._migrate(conn)
            if await conn.fetchval("SELECT count(*) FROM meta") != 0:
                raise PreconditionFailed(
                    f"The database {shown(self.url)} holds an installation already: moving "
                    "one into it would mix two. Give an empty database.",
                    reason="TARGET_NOT_EMPTY",
                )
            for table in TABLE_ORDER:
                columns, rows = tables.get(table, (_COLUMNS[table], []))
                if rows:
                    await conn.copy_records_to_table(table, records=rows, columns=list(columns))


async def _create_installation(
    conn: asyncpg.Connection, now: datetime, seed: Takeover | None
) -> None:
    installation_id = seed.installation.installation_id if seed else str(uuid.uuid4())
    await conn.executemany(
        "INSERT INTO meta (key, value) VALUES ($1, $2)",
        [
            ("installation_id", installation_id),
            ("first_started_at", now.isoformat()),
            ("session_secret", secrets.token_hex(32)),
            ("change_number", "0"),
        ],
    )
    if seed is None:
        return
    await _write(conn, Change(audit=None, add_licenses=seed.licenses, put_users=seed.users))
    for entry in seed.audit:
        await _append_audit(conn, entry)
    await conn.executemany(
        "INSERT INTO carried_sessions (session_id, user_key) VALUES ($1, $2)",
        [(s.session_id, s.user_key) for s in seed.sessions],
    )
    await conn.executemany(
        "INSERT INTO live_sessions (session_id, holder) VALUES ($1, 'takeover')",
        [(s.session_id,) for s in seed.sessions],
    )
    await conn.executemany(
        "INSERT INTO meta (key, value) VALUES ($1, $2)", list(takeover_meta(seed).items())
    )


async def _load(conn: asyncpg.Connection, created: bool) -> Stored:
    meta = {str(k): str(v) for k, v in await conn.fetch("SELECT key, value FROM meta")}
    licenses = await conn.fetch(_LICENSES)
    users = await conn.fetch("SELECT name, enabled, created_at, enabled_at, enable_seq FROM users")
    return stored(meta, licenses, users, created)


async def _delta(conn: asyncpg.Connection, since: int) -> Delta | None:
    meta = {str(k): str(v) for k, v in await conn.fetch("SELECT key, value FROM meta")}
    number = int(meta.get("change_number", "0"))
    found = recorded(
        since,
        number,
        await conn.fetch(
            "SELECT number, user_keys, licenses FROM change_log WHERE number > $1 ORDER BY number",
            since,
        ),
    )
    if found is None:
        return None
    keys, licensed = found
    user_rows = [
        (str(r[0]), tuple(r)[1:])
        for r in await conn.fetch(
            "SELECT name_key, name, enabled, created_at, enabled_at, enable_seq FROM users "
            "WHERE name_key = ANY($1::text[])",
            keys,
        )
    ]
    license_rows = None
    if licensed:
        license_rows = await conn.fetch(_LICENSES)
    return delta(number, meta, keys, user_rows, license_rows)


async def _write(conn: asyncpg.Connection, change: Change) -> None:
    if change.remove_licenses:
        await conn.executemany(
            "DELETE FROM licenses WHERE license_id = $1", [(x,) for x in change.remove_licenses]
        )
    if change.add_licenses:
        await conn.executemany(
            "INSERT INTO licenses (license_id, key_text, installed_at) VALUES ($1, $2, $3)",
            [(x.license_id, x.key_text, _ts(x.installed_at)) for x in change.add_licenses],
        )
    if change.remove_users:
        await conn.executemany(
            "DELETE FROM users WHERE name_key = $1", [(name_key(n),) for n in change.remove_users]
        )
    if change.put_users:
        # One statement per user: a user taking another's enable_seq in the same change
        # must find it free (the old holder is written, or deleted, first by the caller).
        for u in change.put_users:
            await conn.execute(
                """INSERT INTO users (name_key, name, enabled, created_at, enabled_at, enable_seq)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (name_key) DO UPDATE SET
                     name = excluded.name, enabled = excluded.enabled,
                     enabled_at = excluded.enabled_at, enable_seq = excluded.enable_seq""",
                *user_row(u),
            )
    if change.evaluation_ended_at is not None:
        await conn.execute(
            """INSERT INTO meta (key, value) VALUES ('evaluation_ended_at', $1)
               ON CONFLICT (key) DO NOTHING""",
            _ts(change.evaluation_ended_at),
        )
    if change.clock_high_water is not None:
        await conn.execute(
            """INSERT INTO meta (key, value) VALUES ('clock_high_water', $1)
               ON CONFLICT (key) DO UPDATE SET value = excluded.value
               WHERE excluded.value > meta.value""",
            _ts(change.clock_high_water),
        )
    if change.clock_set_back is not None:
        await conn.executemany(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            [
                ("clock_set_back_seen", _ts(change.clock_set_back.seen)),
                ("clock_set_back_found", _ts(change.clock_set_back.found)),
            ],
        )
    if change.takeover_report_seen:
        text = await conn.fetchval("SELECT value FROM meta WHERE key = 'took_over'")
        if text is not None:
            record = {**json.loads(str(text)), "seen": True}
            await conn.execute(
                "UPDATE meta SET value = $1 WHERE key = 'took_over'",
                json.dumps(record, sort_keys=True),
            )
    if change.audit is not None:
        await _append_audit(conn, change.audit)


async def _append_audit(conn: asyncpg.Connection, entry: AuditEntry) -> None:
    head, count = await _audit_head(conn)
    rid = int(await conn.fetchval("SELECT coalesce(max(id), 0) + 1 FROM audit"))
    digest = record_hash(entry, rid, head)
    await conn.execute(
        """INSERT INTO audit (id, at, action, subject, result, previous_hash, hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        rid,
        _ts(entry.at),
        entry.action,
        entry.subject,
        entry.result,
        head,
        digest,
    )
    await conn.executemany(
        """INSERT INTO meta (key, value) VALUES ($1, $2)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value""",
        [("audit_head", digest), ("audit_count", str(count + 1))],
    )


async def _audit_head(conn: asyncpg.Connection) -> tuple[str, int]:
    meta = {
        str(k): str(v)
        for k, v in await conn.fetch(
            "SELECT key, value FROM meta WHERE key IN ('audit_head', 'audit_count')"
        )
    }
    return meta.get("audit_head", GENESIS), int(meta.get("audit_count", "0"))
