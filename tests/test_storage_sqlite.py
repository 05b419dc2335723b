"""The SQLite store: one transaction per change, durable settings, schema versions.

What every store must do, this one included, is tests/test_store_contract.py."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from officestatus_server.core.model import AuditEntry, Change, InstalledLicense, User
from officestatus_server.errors import PreconditionFailed, StorageError
from officestatus_server.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _lic(license_id: str) -> InstalledLicense:
    return InstalledLicense(license_id, f"OSLK1.{license_id}.sig", NOW, None)


def _audit(action: str) -> AuditEntry:
    return AuditEntry(NOW, action, "subject", "result")


async def test_the_database_file_is_the_owners_alone(tmp_path: Path) -> None:
    # What any store does on first open, and after: tests/test_store_contract.py.
    path = tmp_path / "os.db"
    store = SqliteStore(path)
    await store.open(NOW)
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


async def test_a_failing_change_leaves_nothing_behind(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "os.db")
    await store.open(NOW)
    await store.commit(Change(audit=_audit("first"), add_licenses=(_lic("L-1"),)))
    broken = Change(
        audit=_audit("broken"),
        put_users=(User("new", True, NOW, NOW, 7),),
        add_licenses=(_lic("L-1"),),  # the same license id again: the insert fails
    )
    with pytest.raises(StorageError) as failed:
        await store.commit(broken)
    assert failed.value.reason == "STORAGE_WRITE_FAILED"
    assert [a.entry.action for a in await store.audit(10)] == ["first"]
    await store.close()
    db = sqlite3.connect(tmp_path / "os.db")
    try:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()


async def test_durable_settings_and_schema_version(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "os.db")
    await store.open(NOW)
    await store.close()
    db = sqlite3.connect(tmp_path / "os.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        db.close()


async def test_a_database_from_a_newer_server_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "os.db"
    store = SqliteStore(path)
    await store.open(NOW)
    await store.close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(PreconditionFailed) as refused:
        await SqliteStore(path).open(NOW)
    assert refused.value.reason == "SCHEMA_TOO_NEW"
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
    finally:
        db.close()


async def test_a_file_that_is_no_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "os.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PreconditionFailed) as failed:
        await SqliteStore(path).open(NOW)
    assert failed.value.reason == "DATABASE_NOT_SQLITE"
    assert "os.db" in failed.value.message
    assert path.read_bytes() == b"this is not a database" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["os.db"]


async def _store_with_audit(path: Path, n: int) -> SqliteStore:
    store = SqliteStore(path)
    await store.open(NOW)
    for i in range(n):
        await store.commit(Change(audit=_audit(f"action-{i}")))
    return store


def _tamper(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


TAMPERING = {
    "edited": (
        "UPDATE audit SET result = 'nothing happened' WHERE id = 3",
        "record 3 was edited after it was written",
    ),
    "deleted in the middle": (
        "DELETE FROM audit WHERE id = 3",
        "record 4 does not follow the record before it",
    ),
    "deleted at the end": (
        "DELETE FROM audit WHERE id = 5",
        "the newest record is not the one the log last wrote",
    ),
    "inserted": (
        "INSERT INTO audit (id, at, action, subject, result, previous_hash, hash) "
        "VALUES (6, '2026-11-02T09:00:00+00:00', 'users.enable', 'mallory', 'enabled', "
        "'x', 'y')",
        "record 6 was edited after it was written",
    ),
    "reordered": (
        "UPDATE audit SET id = id + 100 WHERE id IN (2, 3); "
        "UPDATE audit SET id = 3 WHERE id = 102; UPDATE audit SET id = 2 WHERE id = 103",
        "record 2 was edited after it was written",
    ),
}


@pytest.mark.parametrize(("statements", "finding"), TAMPERING.values(), ids=TAMPERING.keys())
async def test_a_tampered_audit_log_is_found(tmp_path: Path, statements: str, finding: str) -> None:
    path = tmp_path / "os.db"
    store = await _store_with_audit(path, 5)
    await store.close()
    _tamper(path, *statements.split("; "))
    store = SqliteStore(path)
    await store.open(NOW)
    report = await store.verify_audit()
    await store.close()
    assert not report.intact
    assert any(finding in problem for problem in report.problems), report.problems


async def test_a_schema_1_database_is_migrated_and_its_audit_chained(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    first = MIGRATIONS[0]
    assert isinstance(first, tuple)  # schema 1 is plain SQL statements
    for statement in first:
        db.execute(statement)
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("installation_id", "old-installation"),
            ("first_started_at", NOW.isoformat()),
            ("session_secret", "00" * 32),
        ],
    )
    db.executemany(
        "INSERT INTO audit (at, action, subject, result) VALUES (?, ?, ?, ?)",
        [(NOW.isoformat(), "users.add", "ann", "added 1 user")] * 3,
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()

    store = SqliteStore(path)
    stored = await store.open(NOW)
    await store.commit(Change(audit=_audit("after the upgrade")))
    report = await store.verify_audit()
    await store.close()
    assert stored.installation.installation_id == "old-installation"
    assert report.intact
    assert report.records_checked == 4


async def test_a_backup_is_a_consistent_copy_taken_while_open(tmp_path: Path) -> None:
    store = await _store_with_audit(tmp_path / "os.db", 3)
    await store.commit(Change(audit=_audit("licensed"), add_licenses=(_lic("L-9"),)))
    target = tmp_path / "backup.db"
    await store.backup(target)
    await store.commit(Change(audit=_audit("after the backup")))
    await store.close()
    assert stat.S_IMODE(target.stat().st_mode) & 0o077 == 0
    copy = SqliteStore(target)
    stored = await copy.open(NOW)
    report = await copy.verify_audit()
    await copy.close()
    assert [lic.license_id for lic in stored.licenses] == ["L-9"]
    assert report.intact
    assert report.records_checked == 4
    with pytest.raises(FileExistsError):
        await SqliteStore(tmp_path / "os.db").backup(target)


async def test_a_sqlite_store_is_not_shared_and_its_follow_hears_nothing_until_closed(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "os.db")
    await store.open(NOW)
    assert store.shared is False
    heard: list[object] = []

    async def listen() -> None:
        async for item in store.follow():
            heard.append(item)

    listener = asyncio.create_task(listen())
    await store.commit(Change(audit=_audit("user.add")))
    await asyncio.sleep(0.05)
    assert not listener.done()
    await store.close()
    await asyncio.wait_for(listener, 1)
    assert heard == []


async def _one_change_at_schema(path: Path, version: int, *statements: str) -> SqliteStore:
    """A database with one change, then set back to schema `version` by `statements`
    (what the later migrations made, undone); a store over it, not opened."""
    store = SqliteStore(path)
    await store.open(NOW)
    await store.commit(Change(audit=_audit("user.add")))
    await store.close()
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {version}")
    db.close()
    return SqliteStore(path)


async def test_a_database_of_schema_7_gets_change_numbers_from_zero(tmp_path: Path) -> None:
    # As schema 7 was: no change number, no ended sessions, no record of changes.
    store = await _one_change_at_schema(
        tmp_path / "os.db",
        7,
        "DELETE FROM meta WHERE key = 'change_number'",
        "DROP TABLE ended_sessions",
        "DROP TABLE change_log",
    )
    assert (await store.open(NOW)).change_number == 0
    assert await store.commit(Change(audit=_audit("user.enable"))) == 1
    await store.end_sessions(["s2.x.y"], NOW)
    assert await store.ended_sessions(NOW) == {"s2.x.y"}
    await store.close()


async def test_a_database_of_schema_8_gets_a_record_of_changes_from_its_next_change(
    tmp_path: Path,
) -> None:
    path = tmp_path / "os.db"
    store = await _one_change_at_schema(path, 8, "DROP TABLE change_log")
    assert (await store.open(NOW)).change_number == 1
    assert await store.delta(0) is None  # change 1 was made before the record began
    assert await store.commit(Change(audit=_audit("user.enable"))) == 2
    delta = await store.delta(1)
    assert delta is not None
    assert delta.number == 2
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()


async def test_a_backup_refuses_a_target_that_exists(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "os.db")
    await store.open(NOW)
    await store.commit(Change(audit=_audit("user.add")))
    target = tmp_path / "backup.db"
    await store.backup(target)
    assert target.is_file()
    with pytest.raises(FileExistsError):
        await store.backup(target)
    await store.close()
