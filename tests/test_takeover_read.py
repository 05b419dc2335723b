"""Reading an older server's database: every release's rows, refusals, and never a
changed byte of the old files."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from officestatus_server.errors import PreconditionFailed
from officestatus_server.takeover.read import read_legacy
from tests.legacy_servers import (
    LegacyInstallation,
    LegacySession,
    LegacyUser,
    LegacyVendor,
)


def _digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def _installation(release: int, vendor: LegacyVendor) -> LegacyInstallation:
    return LegacyInstallation(
        release=release,
        port=50999,
        listen_host="10.0.0.5" if release >= 4 else None,
        heartbeat_seconds=45,
        users=[
            LegacyUser("Anna", enabled_at="2022-01-02 10:00:00"),
            LegacyUser("bob", enabled=False),
            LegacyUser("carl"),
        ],
        licenses=[vendor.key(f"L{release}-1", major=release)],
        extensions=[
            vendor.key(
                "X-1", major=4, kind="extension", seats=0, installation="i", until="2021-04-30"
            )
        ],
        audit=[("2022-01-02 10:00:00", "DOMAIN\\admin", "user.enable", "Anna")],
        sessions=[LegacySession("0" * 32, "carl", last_seen_at="2026-12-01 08:00:00")],
    )


@pytest.mark.parametrize("release", [3, 4, 5])
def test_every_release_reads_with_its_own_fields(tmp_path: Path, release: int) -> None:
    vendor = LegacyVendor()
    _installation(release, vendor).write(tmp_path)
    before = _digest(tmp_path)
    old = read_legacy(tmp_path)
    assert _digest(tmp_path) == before
    assert old.release == release
    assert [u.name for u in old.users] == ["Anna", "bob", "carl"]
    assert [u.enabled for u in old.users] == [True, False, True]
    assert old.port == 50999
    assert len(old.license_keys) == 1
    if release == 3:
        assert old.listen == "0.0.0.0:50999"
        assert old.users[0].enabled_at is None
        assert (old.audit, old.sessions, old.extension_keys) == ((), (), ())
    else:
        assert old.listen == "10.0.0.5:50999"
        assert old.users[0].enabled_at == datetime(2022, 1, 2, 10, tzinfo=UTC)
        assert [a.action for a in old.audit] == ["user.enable"]
        assert len(old.extension_keys) == 1
    assert old.heartbeat_seconds == (45 if release == 5 else None)
    assert [s.user_name for s in old.sessions] == (["carl"] if release == 5 else [])


def _refusal(directory: Path) -> PreconditionFailed:
    before = _digest(directory)
    with pytest.raises(PreconditionFailed) as refused:
        read_legacy(directory)
    assert _digest(directory) == before
    assert str(directory) in refused.value.message
    return refused.value


def test_an_unknown_schema_number_is_refused(tmp_path: Path) -> None:
    path = LegacyInstallation(release=5).write(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=7")
    refused = _refusal(tmp_path)
    assert refused.reason == "UPGRADE_SOURCE_UNKNOWN_RELEASE"
    assert "7" in refused.message


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = LegacyInstallation(release=4).write(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE users DROP COLUMN enabled_at")
    refused = _refusal(tmp_path)
    assert refused.reason == "UPGRADE_SOURCE_INCOMPLETE"
    assert "users.enabled_at" in refused.message


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    path = LegacyInstallation(release=5).write(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE sessions")
    assert "the table sessions" in _refusal(tmp_path).message


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / "licsrv.db").write_bytes(b"not a database at all" * 100)
    assert _refusal(tmp_path).reason == "UPGRADE_SOURCE_INVALID"


def test_a_database_locked_by_a_running_server_is_refused(tmp_path: Path) -> None:
    path = LegacyInstallation(release=5).write(tmp_path)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        refused = _refusal(tmp_path)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert refused.reason == "UPGRADE_SOURCE_IN_USE"
    assert "still running" in refused.message


def test_a_hot_journal_is_rolled_back_in_a_copy_never_in_the_original(tmp_path: Path) -> None:
    LegacyInstallation(release=5, users=[LegacyUser("anna")]).write(tmp_path)
    # An old server killed in the middle of a change: its journal is left behind.
    code = (
        "import os, sqlite3\n"
        f"db = sqlite3.connect({str(tmp_path / 'licsrv.db')!r}, isolation_level=None)\n"
        "db.execute('PRAGMA cache_size=1')\n"
        "db.execute('BEGIN')\n"
        "row = \"INSERT INTO users VALUES (?, 1, '2022-01-01 00:00:00', NULL)\"\n"
        "for i in range(5000):\n"
        "    db.execute(row, (f'u{i}',))\n"
        "os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    assert (tmp_path / "licsrv.db-journal").exists()
    before = _digest(tmp_path)
    old = read_legacy(tmp_path)
    assert [u.name for u in old.users] == ["anna"]
    assert _digest(tmp_path) == before
