"""Upgrading in place, on real server processes: a 3.x, 4.x or 5.x installation becomes
6.x at the first start; its clients go on as before; refusals write nothing."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from officestatus_client import AdminClient, DenyReason, SeatClient
from officestatus_server.core.keys import public_key_text
from scripts.processes import SERVER_COMMAND, start_listening, terminate
from tests.legacy import LegacyClient
from tests.legacy_servers import (
    LegacyInstallation,
    LegacySession,
    LegacyUser,
    LegacyVendor,
    flip_one_byte,
)
from tests.support import Vendor, free_port


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Upgrade:
    old_dir: Path
    data_dir: Path
    vendor: LegacyVendor
    port: int

    def trust_old_vendor(self) -> None:
        keys = self.data_dir / "vendor-keys"
        keys.mkdir(parents=True, exist_ok=True)
        public = Ed25519PublicKey.from_public_bytes(self.vendor.public_raw())
        (keys / "kms-legacy.pub").write_text(public_key_text(self.vendor.kid, public))

    def command(self, *extra: str) -> list[str]:
        return [
            SERVER_COMMAND,
            "--data-dir",
            str(self.data_dir),
            "--upgrade-from",
            str(self.old_dir),
            *extra,
        ]

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*extra), capture_output=True, text=True, timeout=60, check=False
        )


@pytest.fixture
def upgrade(tmp_path: Path) -> Upgrade:
    up = Upgrade(tmp_path / "old", tmp_path / "data", LegacyVendor(), free_port())
    up.trust_old_vendor()
    return up


def _installation(release: int, up: Upgrade) -> LegacyInstallation:
    v = up.vendor
    return LegacyInstallation(
        release=release,
        port=up.port,
        listen_host="127.0.0.1" if release >= 4 else None,
        heartbeat_seconds=30,
        users=[
            LegacyUser("anna", enabled_at="2022-01-01 10:00:00"),
            LegacyUser("ANNA ", enabled=release == 3),
            LegacyUser("bob", enabled=False),
            LegacyUser("carl", enabled_at="2023-01-01 10:00:00"),
        ],
        licenses=[
            v.key(f"L{release}-1", major=release, seats=10),
            flip_one_byte(v.key(f"L{release}-2", major=release, seats=99)),
        ],
        audit=[("2022-01-01 10:00:00", "DOM\\admin", "user.add", "anna")],
    )


@pytest.mark.parametrize("release", [3, 4, 5])
async def test_the_first_start_takes_over_and_old_clients_log_in_as_before(
    upgrade: Upgrade, release: int
) -> None:
    database = _installation(release, upgrade).write(upgrade.old_dir)
    before = _digest(database)
    process, listening = await start_listening(*upgrade.command(), timeout=30, whole_banner=True)
    try:
        host = "127.0.0.1" if release >= 4 else "0.0.0.0"
        assert f"listening on {host}:{upgrade.port}" in listening.banner
        assert f"took over: took over the {release}.x installation" in listening.banner
        address = f"127.0.0.1:{upgrade.port}"
        async with grpc.aio.insecure_channel(address) as channel:
            client = LegacyClient("v4" if release >= 4 else "v3", channel)
            kwargs = {"machine_name": "PC-1"} if release >= 4 else {}
            anna = await client.Login(user_name="Anna", client_version="4.2.0", **kwargs)
            bob = await client.Login(user_name="bob", client_version="4.2.0", **kwargs)
        assert anna.msg.granted, anna.msg.message
        assert not bob.msg.granted
        token = (upgrade.data_dir / "admin-token").read_text().strip()
        async with AdminClient(address, token) as admin:
            status = await admin.status()
            users = {u.name: u for u in await admin.list_users()}
            audit = await admin.audit()
        assert status.installation_id == "6f1c1e0a-3b7e-4c55-9a57-2c1d8f0e4b21"
        assert status.evaluation
        assert status.evaluation_days_left == 30
        assert sorted(users) == ["anna", "bob", "carl"]
        assert users["anna"].enabled
        assert users["carl"].enabled
        assert not users["bob"].enabled
        (carried,) = status.not_counting
        assert carried.license_id == f"L{release}-1"
        assert f"{release}.x license: does not count on 6.x" in carried.reason
        assert audit[0].action == "takeover"
        if release >= 4:
            assert audit[1].action == f"{release}.x user.add"
    finally:
        assert await terminate(process)
    assert _digest(database) == before


async def test_a_licsrv_db_in_the_data_directory_itself_is_taken_over(upgrade: Upgrade) -> None:
    # The old server's data directory given as the 6.x one: its licsrv.db is the old
    # installation, not the trace of a 6.x database that went missing.
    database = _installation(5, upgrade).write(upgrade.data_dir)
    before = _digest(database)
    command = [
        SERVER_COMMAND,
        "--data-dir",
        str(upgrade.data_dir),
        "--legacy-data-dir",
        str(upgrade.old_dir),
    ]
    process, listening = await start_listening(*command, timeout=30, whole_banner=True)
    try:
        assert "took over: took over the 5.x installation" in listening.banner
    finally:
        assert await terminate(process)
    assert _digest(database) == before


async def test_a_5x_session_keeps_heartbeating_across_the_upgrade(upgrade: Upgrade) -> None:
    old = _installation(5, upgrade)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    old.sessions = [
        LegacySession("ab" * 16, "anna", last_seen_at=now),
        LegacySession("cd" * 16, "carl", last_seen_at="2020-01-01 00:00:00"),
    ]
    old.write(upgrade.old_dir)
    process, _ = await start_listening(*upgrade.command(), timeout=30, whole_banner=True)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{upgrade.port}") as channel:
            client = LegacyClient("v5", channel)
            live = await client.Heartbeat(session_id="ab" * 16)
            stale = await client.Heartbeat(session_id="cd" * 16)
        assert live.msg.granted, live.msg.message
        assert not stale.msg.granted
    finally:
        assert await terminate(process)


async def test_a_restart_keeps_the_takeover_and_never_takes_over_again(upgrade: Upgrade) -> None:
    _installation(4, upgrade).write(upgrade.old_dir)
    for _ in range(2):
        process, listening = await start_listening(
            *upgrade.command(), timeout=30, whole_banner=True
        )
        assert f"127.0.0.1:{upgrade.port}" in listening.banner
        assert await terminate(process)
    token = (upgrade.data_dir / "admin-token").read_text().strip()
    process, _ = await start_listening(*upgrade.command(), timeout=30, whole_banner=True)
    try:
        async with AdminClient(f"127.0.0.1:{upgrade.port}", token) as admin:
            audit = await admin.audit()
            status = await admin.status()
        assert [a.action for a in audit].count("takeover") == 1
        assert status.evaluation_days_left == 30
    finally:
        assert await terminate(process)


def test_an_old_server_still_running_is_refused_and_nothing_is_written(upgrade: Upgrade) -> None:
    _installation(4, upgrade).write(upgrade.old_dir)
    with socket.socket() as old_server:
        old_server.bind(("127.0.0.1", upgrade.port))
        old_server.listen()
        result = upgrade.run()
    assert result.returncode == 1
    assert "still running" in result.stderr
    assert "UPGRADE_SOURCE_IN_USE" in result.stderr
    assert not (upgrade.data_dir / "officestatus.db").exists()
    assert not (upgrade.data_dir / "admin-token").exists()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("PRAGMA user_version=9", "UPGRADE_SOURCE_UNKNOWN_RELEASE"),
        ("DROP TABLE licenses", "UPGRADE_SOURCE_INCOMPLETE"),
    ],
)
def test_a_database_these_releases_did_not_write_is_refused(
    upgrade: Upgrade, damage: str, reason: str
) -> None:
    path = _installation(5, upgrade).write(upgrade.old_dir)
    with sqlite3.connect(path) as db:
        db.execute(damage)
    before = _digest(path)
    result = upgrade.run()
    assert result.returncode == 1
    assert reason in result.stderr
    assert not (upgrade.data_dir / "officestatus.db").exists()
    assert _digest(path) == before


def test_a_2x_directory_gets_the_steps(upgrade: Upgrade) -> None:
    upgrade.old_dir.mkdir()
    (upgrade.old_dir / "OSSERVER.INI").write_text("[Server]\n")
    result = upgrade.run()
    assert result.returncode == 1
    assert "UPGRADE_FROM_2X" in result.stderr
    assert "osexport.exe" in result.stderr
    assert "officestatus-admin user import users.csv" in result.stderr


def test_the_dry_run_prints_every_item_and_writes_nothing(upgrade: Upgrade) -> None:
    path = _installation(5, upgrade).write(upgrade.old_dir)
    before = _digest(path)
    result = upgrade.run("--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run: took over the 5.x installation" in result.stdout
    assert "user 'anna': merged ('ANNA ' is the same account on 6.x; enabled)" in result.stdout
    assert "license L5-1: taken over (5.x, 10 seats, purchased; does not count on 6.x)" in (
        result.stdout
    )
    assert "heartbeat 30 s: taken over" in result.stdout
    assert "nothing was written" in result.stdout
    assert not (upgrade.data_dir / "officestatus.db").exists()
    assert not (upgrade.data_dir / "admin-token").exists()
    assert _digest(path) == before


def test_a_refused_dry_run_exits_non_zero(upgrade: Upgrade) -> None:
    upgrade.old_dir.mkdir()
    (upgrade.old_dir / "licsrv.db").write_bytes(b"\0" * 4096)
    result = upgrade.run("--dry-run")
    assert result.returncode == 1
    assert "UPGRADE_SOURCE_INVALID" in result.stderr


async def test_a_sigkill_during_the_takeover_leaves_no_6x_database(upgrade: Upgrade) -> None:
    old = _installation(5, upgrade)
    old.users += [LegacyUser(f"user{i:04d}") for i in range(20000)]
    old.write(upgrade.old_dir)
    database = upgrade.data_dir / "officestatus.db"
    partial = upgrade.data_dir / "officestatus.db.new"
    killed_midway = 0
    for _ in range(3):
        process = await asyncio.create_subprocess_exec(
            *upgrade.command(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        # Killed while the 6.x database is being made (it exists under its partial name).
        # Another process makes the file, so there is no event to await: poll the directory.
        async with asyncio.timeout(30):
            while not partial.exists() and not database.exists():  # noqa: ASYNC110
                await asyncio.sleep(0.002)
        process.kill()
        await process.wait()
        if database.exists():
            break  # it had finished: the database must then be whole (checked below)
        killed_midway += 1
    assert killed_midway > 0
    process, _ = await start_listening(*upgrade.command(), timeout=60, whole_banner=True)
    try:
        token = (upgrade.data_dir / "admin-token").read_text().strip()
        async with AdminClient(f"127.0.0.1:{upgrade.port}", token) as admin:
            users = await admin.list_users()
            audit = await admin.audit()
        assert len(users) == 20003
        assert [a.action for a in audit].count("takeover") == 1
    finally:
        assert await terminate(process)


@pytest.mark.parametrize(
    ("release", "seated"),
    [
        # 3.x gave seats in rowid order; 4.x and 5.x by enabled_at, NULL first.
        (3, ["dora", "bert"]),
        (4, ["bert", "carl"]),
        (5, ["bert", "carl"]),
    ],
)
async def test_a_6x_license_with_fewer_seats_keeps_the_old_seat_order(
    upgrade: Upgrade, tmp_path: Path, release: int, seated: list[str]
) -> None:
    old = _installation(release, upgrade)
    # The old seat order is neither the names' order nor (for 4.x/5.x) the rows' order.
    old.users = [
        LegacyUser("dora", enabled_at="2023-05-01 09:00:00"),
        LegacyUser("bert", enabled_at=None),
        LegacyUser("carl", enabled_at="2022-01-01 09:00:00"),
        LegacyUser("anna", enabled_at="2024-01-01 09:00:00"),
    ]
    old.write(upgrade.old_dir)
    vendor = Vendor()
    public = vendor.write_public_key(tmp_path)
    process, _ = await start_listening(
        *upgrade.command("--vendor-key", str(public)), timeout=30, whole_banner=True
    )
    try:
        address = f"127.0.0.1:{upgrade.port}"
        token = (upgrade.data_dir / "admin-token").read_text().strip()
        async with AdminClient(address, token) as admin:
            _, status = await admin.install_license(vendor.issue(2))
        assert not status.evaluation
        assert (status.seats_total, status.users_enabled) == (2, 4)
        refused = [n for n in ["dora", "bert", "carl", "anna"] if n not in seated]
        assert list(status.over_capacity) == refused
        async with SeatClient(address) as client:
            for name in seated:
                result = await client.login(name)
                assert result.granted, (name, result.message)
            for name in refused:
                result = await client.login(name)
                assert not result.granted, name
                assert result.reason is DenyReason.OVER_CAPACITY
        async with grpc.aio.insecure_channel(address) as channel:
            # The clients deployed with the old server see the same order.
            legacy = LegacyClient("v5" if release == 5 else "v4", channel)
            version = "5.2.0" if release == 5 else "4.2.0"
            granted = {
                name: (
                    await legacy.Login(user_name=name, client_version=version, machine_name="PC")
                ).msg.granted
                for name in ["anna", "bert", "carl", "dora"]
            }
        assert granted == {name: name in seated for name in ["anna", "bert", "carl", "dora"]}
    finally:
        assert await terminate(process)
