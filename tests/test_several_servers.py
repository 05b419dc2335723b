"""Three real `officestatus-server` processes over one real PostgreSQL database: one
installation, the seat rule enforced by the database, every server's memory following
it within a second, sessions that move between servers, no acknowledged change lost to
a SIGKILL, and logins answered while PostgreSQL is away."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from officestatus_client import (
    AdminClient,
    OfficeStatusError,
    SeatClient,
    SeatsExhaustedError,
    UnavailableError,
)
from officestatus_server.core.keys import public_key_text
from scripts.postgres import PostgresCluster
from tests.legacy import LegacyClient
from tests.legacy_servers import LegacyInstallation, LegacyUser, LegacyVendor
from tests.process import SERVER_COMMAND, ServerProcess, start_server_process
from tests.support import Vendor

# How soon a change through one server must be in another's answers.
PROPAGATION_SECONDS = 1.0


class Servers:
    """Servers started over one database, each with a data directory of its own."""

    def __init__(self, tmp_path: Path, url: str, vendor: Vendor) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.public_key = vendor.write_public_key(tmp_path)
        self.running: list[ServerProcess] = []

    async def start(self, index: int, *extra: str) -> ServerProcess:
        data = self.tmp_path / f"server-{index}"
        server = await start_server_process(
            data, "--database", self.url, "--vendor-key", str(self.public_key), *extra
        )
        self.running.append(server)
        return server

    def token(self, index: int) -> str:
        return (self.tmp_path / f"server-{index}" / "admin-token").read_text().strip()

    def admin(self, server: ServerProcess, index: int = 0) -> AdminClient:
        return AdminClient(server.address, self.token(index), timeout=15)

    async def licensed(self, vendor: Vendor, seats: int, users: list[str]) -> None:
        """A license of `seats` and `users` enabled, through the first server; returns
        once every running server has heard of them."""
        async with self.admin(self.running[0]) as admin:
            await admin.install_license(vendor.issue(seats))
            await admin.add_users(users, enable=True)
        for server in self.running[1:]:
            async with self.admin(server) as admin:

                async def heard() -> bool:
                    return set(users) <= {u.name for u in await admin.list_users()}

                await _within(PROPAGATION_SECONDS, heard)

    async def stop_all(self) -> None:
        for server in self.running:
            with contextlib.suppress(Exception):
                await server.stop()


@pytest.fixture
async def servers(
    tmp_path: Path, pg_url: str, vendor: Vendor
) -> AsyncIterator[tuple[Servers, list[ServerProcess]]]:
    """Three servers over one fresh database; the first made the installation."""
    group = Servers(tmp_path, pg_url, vendor)
    started = [await group.start(0)]
    started += await asyncio.gather(group.start(1), group.start(2))
    try:
        yield group, started
    finally:
        await group.stop_all()


async def _within(seconds: float, probe: Callable[[], Awaitable[bool]]) -> float:
    """How long until `probe` holds (polled every 10 ms); fails after `seconds`."""
    began = time.monotonic()
    while True:
        if await probe():
            return time.monotonic() - began
        if time.monotonic() - began > seconds:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.01)


async def test_three_servers_are_one_installation_with_one_admin_token(
    servers: tuple[Servers, list[ServerProcess]],
) -> None:
    group, (a, b, c) = servers
    assert group.token(0) == group.token(1) == group.token(2)
    ids = set()
    for i, server in enumerate((a, b, c)):
        async with group.admin(server, i) as admin:
            status = await admin.status()
            ids.add(status.installation_id)
            assert status.evaluation
    assert len(ids) == 1
    assert "shared with the other servers" in b.banner


async def test_200_concurrent_enables_over_three_servers_enable_exactly_the_35_seats(
    servers: tuple[Servers, list[ServerProcess]], vendor: Vendor
) -> None:
    group, trio = servers
    names = [f"user{i:03d}" for i in range(200)]
    async with group.admin(trio[0]) as admin:
        await admin.install_license(vendor.issue(25))
        await admin.install_license(vendor.issue(10))
        await admin.add_users(names, enable=False)
    clients = [group.admin(server) for server in trio]
    try:

        async def enable(i: int) -> bool:
            try:
                await clients[i % 3].enable_users([names[i]])
            except SeatsExhaustedError:
                return False
            return True

        results = await asyncio.gather(*(enable(i) for i in range(200)))
    finally:
        for client in clients:
            await client.close()
    assert sum(results) == 35
    for server in trio:
        async with group.admin(server) as admin:
            users = await admin.list_users()
            assert sum(u.enabled for u in users) == 35
            assert (await admin.verify_audit()).intact


async def test_a_disable_at_a_refuses_the_next_heartbeat_at_c_within_a_second(
    servers: tuple[Servers, list[ServerProcess]], vendor: Vendor
) -> None:
    group, (a, _, c) = servers
    async with group.admin(a) as admin:
        await admin.install_license(vendor.issue(5))
        await admin.add_users(["alice"], enable=True)
    # Timed: how soon C grants alice once A has enabled her.
    async with SeatClient(c.address) as seat:
        login = await _within(PROPAGATION_SECONDS, lambda: _granted(seat, "alice"))
        assert login < PROPAGATION_SECONDS
        session = (await seat.login("alice")).session_id
        async with group.admin(a) as admin:
            await admin.disable_users(["alice"])

        async def refused() -> bool:
            return not (await seat.heartbeat(session)).granted

        took = await _within(PROPAGATION_SECONDS, refused)
    assert took < PROPAGATION_SECONDS


async def _granted(seat: SeatClient, user: str) -> bool:
    return (await seat.login(user)).granted


async def test_a_5x_session_moves_to_b_when_a_dies_and_a_logout_at_b_ends_it_at_c(
    servers: tuple[Servers, list[ServerProcess]], vendor: Vendor
) -> None:
    group, (a, b, c) = servers
    await group.licensed(vendor, 5, ["alice"])  # B and C have heard of alice before A dies
    async with grpc.aio.insecure_channel(a.address) as channel:
        login = await LegacyClient("v5", channel).Login(user_name="alice", client_version="5.2.0")
    assert login.msg.granted
    session = login.msg.session_id
    await a.kill()
    async with (
        grpc.aio.insecure_channel(b.address) as at_b,
        grpc.aio.insecure_channel(c.address) as at_c,
    ):
        client_b, client_c = LegacyClient("v5", at_b), LegacyClient("v5", at_c)
        assert (await client_b.Heartbeat(session_id=session)).msg.granted
        assert (await client_c.Heartbeat(session_id=session)).msg.granted
        await client_b.Logout(session_id=session)

        async def ended_at_c() -> bool:
            return not (await client_c.Heartbeat(session_id=session)).msg.granted

        took = await _within(PROPAGATION_SECONDS, ended_at_c)
    assert took < PROPAGATION_SECONDS


async def test_sessions_an_admin_ends_at_a_are_ended_at_b_within_a_second(
    servers: tuple[Servers, list[ServerProcess]], vendor: Vendor
) -> None:
    group, (a, b, _) = servers
    await group.licensed(vendor, 5, ["alice"])
    async with (
        grpc.aio.insecure_channel(a.address) as at_a,
        grpc.aio.insecure_channel(b.address) as at_b,
    ):
        login = await LegacyClient("v5", at_a).Login(user_name="alice", client_version="5.2.0")
        session = login.msg.session_id
        client_b = LegacyClient("v5", at_b)
        assert (await client_b.Heartbeat(session_id=session)).msg.granted
        async with group.admin(a) as admin:
            assert (await admin.end_sessions("alice")).ended == 1

        async def ended_at_b() -> bool:
            return not (await client_b.Heartbeat(session_id=session)).msg.granted

        took = await _within(PROPAGATION_SECONDS, ended_at_b)
    assert took < PROPAGATION_SECONDS


async def test_an_older_installation_is_taken_over_once_per_database(
    tmp_path: Path, pg_url: str, vendor: Vendor
) -> None:
    legacy = LegacyVendor()
    old = tmp_path / "old-5x"
    LegacyInstallation(
        release=5,
        users=[LegacyUser("anna"), LegacyUser("bob", enabled=False)],
        licenses=[legacy.key("L5-1", major=5, seats=10)],
    ).write(old)
    public = Ed25519PublicKey.from_public_bytes(legacy.public_raw())
    group = Servers(tmp_path, pg_url, vendor)
    for i in (0, 1):  # each server given the old installation and its vendor's key
        keys = tmp_path / f"server-{i}" / "vendor-keys"
        keys.mkdir(parents=True)
        (keys / "kms-legacy.pub").write_text(public_key_text(legacy.kid, public))
    try:
        a = await group.start(0, "--upgrade-from", str(old))
        b = await group.start(1, "--upgrade-from", str(old))
        assert "took over the 5.x installation" in a.banner
        for i, server in enumerate((a, b)):
            async with group.admin(server, i) as admin:
                status = await admin.status()
                users = {(u.name, u.enabled) for u in await admin.list_users()}
                takeovers = [r for r in await admin.audit(100) if r.action == "takeover"]
            assert status.installation_id == LegacyInstallation(release=5).installation_id
            assert users == {("anna", True), ("bob", False)}
            assert len(takeovers) == 1  # once per database, not once per server
    finally:
        await group.stop_all()


async def test_a_vendor_key_given_to_one_server_is_trusted_by_all(
    tmp_path: Path, pg_url: str, vendor: Vendor
) -> None:
    group = Servers(tmp_path, pg_url, Vendor())  # the servers are given another vendor's key
    try:
        a = await group.start(0, "--vendor-key", str(vendor.write_public_key(tmp_path)))
        b = await group.start(1)
        async with group.admin(b) as admin:
            _, status = await admin.install_license(vendor.issue(7))
            assert status.seats_total == 7
        async with group.admin(a) as admin:

            async def counted_at_a() -> bool:
                return (await admin.status()).seats_total == 7

            await _within(PROPAGATION_SECONDS, counted_at_a)
    finally:
        await group.stop_all()


async def test_sigkill_of_a_server_under_admin_traffic_loses_no_acknowledged_change(
    servers: tuple[Servers, list[ServerProcess]], vendor: Vendor
) -> None:
    group, (a, b, c) = servers
    names = [f"user{i:03d}" for i in range(120)]
    async with group.admin(a) as admin:
        await admin.install_license(vendor.issue(500))
    acknowledged: set[str] = set()

    async def add_through(server: ServerProcess, mine: list[str]) -> None:
        async with group.admin(server) as admin:
            for name in mine:
                try:
                    await admin.add_users([name], enable=True)
                except OfficeStatusError:
                    return  # the server died under the call: not acknowledged
                acknowledged.add(name)

    traffic = asyncio.gather(*(add_through(s, names[i::3]) for i, s in enumerate((a, b, c))))
    await asyncio.sleep(0.5)
    await a.kill()
    await traffic
    assert len(acknowledged) >= 60
    for server in (b, c):
        async with group.admin(server) as admin:

            async def all_there() -> bool:
                return acknowledged <= {u.name for u in await admin.list_users() if u.enabled}

            # The last ones were acknowledged by the other server a moment ago.
            await _within(PROPAGATION_SECONDS, all_there)
            assert (await admin.verify_audit()).intact


async def test_logins_go_on_while_postgresql_is_stopped_and_admin_changes_wait_for_it(
    servers: tuple[Servers, list[ServerProcess]], vendor: Vendor, pg_cluster: PostgresCluster
) -> None:
    group, (a, b, _) = servers
    await group.licensed(vendor, 10, ["alice", "bob"])  # B has heard of them before the load
    answered: list[bool] = []
    stop_logins = asyncio.Event()

    async def logins() -> None:
        async with SeatClient(b.address) as seat:
            while not stop_logins.is_set():
                answered.append((await seat.login("alice")).granted)
                await asyncio.sleep(0.01)

    load = asyncio.create_task(logins())
    try:
        await asyncio.sleep(0.2)
        await pg_cluster.stop()
        async with group.admin(a) as admin:
            with pytest.raises(UnavailableError) as refused:
                await admin.add_users(["carol"], enable=True)
            assert refused.value.reason == "DATABASE_UNAVAILABLE"
        during = len(answered)
        await asyncio.sleep(0.5)
        assert len(answered) > during  # answered from memory, PostgreSQL away
        await pg_cluster.start()

        async def accepted() -> bool:
            async with group.admin(a) as admin:
                try:
                    await admin.add_users(["carol"], enable=True)
                except UnavailableError:
                    return False
            return True

        await _within(30, accepted)
        async with SeatClient(b.address) as seat:
            await _within(PROPAGATION_SECONDS * 5, lambda: _granted(seat, "carol"))
    finally:
        stop_logins.set()
        await load
    assert answered
    assert all(answered)


async def test_an_installation_moves_from_sqlite_to_postgresql_whole_and_only_once(
    tmp_path: Path, pg_url: str, vendor: Vendor
) -> None:
    data = tmp_path / "sqlite-server"
    public = vendor.write_public_key(tmp_path)
    before = await start_server_process(data, "--vendor-key", str(public))
    try:
        async with AdminClient.local(before.address, data) as admin:
            await admin.install_license(vendor.issue(10))
            await admin.add_users(["ann", "bob", "cat"], enable=True)
            await admin.disable_users(["cat"])
            status = await admin.status()
            audit = [(r.action, r.subject) for r in await admin.audit(100)]
        async with SeatClient(before.address) as seat:
            session = (await seat.login("ann")).session_id
    finally:
        await before.stop()

    async def move() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            SERVER_COMMAND,
            "--data-dir",
            str(data),
            "--move-to",
            pg_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode()

    code, out = await move()
    assert code == 0, out
    assert "audit chain verified" in out
    again, refused = await move()
    assert again == 1
    assert "TARGET_NOT_EMPTY" in refused

    group = Servers(tmp_path, pg_url, vendor)
    try:
        after = await group.start(0)
        async with group.admin(after) as admin:
            moved = await admin.status()
            assert moved.installation_id == status.installation_id
            assert moved.summary == status.summary
            assert {(u.name, u.enabled) for u in await admin.list_users()} == {
                ("ann", True),
                ("bob", True),
                ("cat", False),
            }
            assert [(r.action, r.subject) for r in await admin.audit(100)] == audit
            assert (await admin.verify_audit()).intact
        async with SeatClient(after.address) as seat:
            assert (await seat.heartbeat(session)).granted  # the session moved too
    finally:
        await group.stop_all()
