"""Sessions of the real `officestatus-server` process: a logout stays a logout across a
SIGTERM and restart, live sessions survive a SIGKILL, and endless logins without logout
keep the sessions and the memory bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from officestatus.admin import admin_service_pb2 as apb
from officestatus.admin import admin_service_pb2_grpc as apb_grpc
from officestatus.licensing import seat_service_pb2 as spb
from officestatus.licensing import seat_service_pb2_grpc as spb_grpc
from tests.process import ServerProcess, start_server_process


def _metadata(data_dir: Path) -> tuple[tuple[str, str], ...]:
    token = (data_dir / "admin-token").read_text().strip()
    return (("authorization", f"Bearer {token}"),)


async def _add_users(server: ServerProcess, data: Path, names: list[str]) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        admin = apb_grpc.AdminServiceStub(channel)
        await admin.AddUsers(
            apb.AddUsersRequest(user_names=names, enable=True), metadata=_metadata(data)
        )


async def _active_sessions(server: ServerProcess, data: Path) -> int:
    async with grpc.aio.insecure_channel(server.address) as channel:
        admin = apb_grpc.AdminServiceStub(channel)
        reply = await admin.GetStatus(apb.GetStatusRequest(), metadata=_metadata(data))
    return int(reply.status.active_sessions)


async def _login(seat: spb_grpc.SeatServiceAsyncStub, user: str, version: str = "6.0.0") -> str:
    reply = await seat.Login(spb.LoginRequest(user_name=user, client_version=version))
    assert reply.granted, reply.message
    return str(reply.session_id)


async def _beats(server: ServerProcess, sessions: list[str]) -> list[bool]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        seat = spb_grpc.SeatServiceStub(channel)
        return [
            (await seat.Heartbeat(spb.HeartbeatRequest(session_id=s))).granted for s in sessions
        ]


async def test_a_logout_stays_a_logout_after_sigterm_and_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = await start_server_process(data)
    try:
        await _add_users(server, data, ["alice", "bob"])
        async with grpc.aio.insecure_channel(server.address) as channel:
            seat = spb_grpc.SeatServiceStub(channel)
            alice = await _login(seat, "alice", "5.1.0")
            bob = await _login(seat, "bob", "6.0.0")
            await seat.Logout(spb.LogoutRequest(session_id=alice))
    finally:
        code, _ = await server.stop()
    assert code == 0

    server = await start_server_process(data)
    try:
        assert await _beats(server, [alice, bob]) == [False, True]
        assert await _active_sessions(server, data) == 1
    finally:
        await server.stop()
    # And once more: bob's session was written down again by the second run.
    server = await start_server_process(data)
    try:
        assert await _beats(server, [alice, bob]) == [False, True]
    finally:
        await server.stop()


async def test_live_sessions_survive_a_sigkill(tmp_path: Path) -> None:
    """Sessions opened just before a crash (none of them written down yet) resume."""
    data = tmp_path / "data"
    server = await start_server_process(data)
    try:
        await _add_users(server, data, ["alice", "bob"])
        async with grpc.aio.insecure_channel(server.address) as channel:
            seat = spb_grpc.SeatServiceStub(channel)
            sessions = [await _login(seat, "alice", "5.1.0"), await _login(seat, "bob")]
    finally:
        await server.kill()

    server = await start_server_process(data)
    try:
        assert await _beats(server, sessions) == [True, True]
    finally:
        await server.kill()
    # Crashed again, right after resuming them: still live.
    server = await start_server_process(data)
    try:
        assert await _beats(server, sessions) == [True, True]
    finally:
        await server.stop()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _login_storm(server: ServerProcess, users: list[str], rounds: int) -> None:
    """Logins without logout, 32 at a time, every user `rounds` times."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        seat = spb_grpc.SeatServiceStub(channel)
        for _ in range(rounds):
            for i in range(0, len(users), 32):
                await asyncio.gather(*(_login(seat, u) for u in users[i : i + 32]))


async def test_endless_logins_without_logout_reach_a_memory_plateau(tmp_path: Path) -> None:
    """One user and many sign in again and again and never out: the sessions stay within
    the bounds the status shows, and the server's memory stops growing."""
    data = tmp_path / "data"
    server = await start_server_process(
        data, "--max-sessions", "300", "--max-sessions-per-user", "5"
    )
    try:
        many = [f"user{i}" for i in range(400)]
        await _add_users(server, data, ["alice", *many])
        storm = ["alice"] * 400 + many
        pid = server.process.pid
        # Warm up: the bounds are reached, the allocator has its arenas.
        await _login_storm(server, storm, 3)
        assert await _active_sessions(server, data) == 300
        before = _rss_kib(pid)

        await _login_storm(server, storm, 10)  # 8,000 more sessions opened

        grown = _rss_kib(pid) - before
        assert await _active_sessions(server, data) == 300
        # Unbounded, the 8,000 sessions kept add some 2 MB (measured: 2.0 to 2.3 MB; bounded,
        # it shrank by about 1 MB).
        assert grown < 1024, f"VmRSS grew by {grown} KiB over 8,000 logins"
        async with grpc.aio.insecure_channel(server.address) as channel:
            seat = spb_grpc.SeatServiceStub(channel)
            last = [await _login(seat, "alice") for _ in range(5)]
        assert await _beats(server, last) == [True] * 5
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        pytest.param(
            ("--max-sessions", "0"),
            {},
            "--max-sessions (OFFICESTATUS_MAX_SESSIONS) must be between 1 and",
            id="flag-zero",
        ),
        pytest.param(
            ("--max-sessions-per-user", "-5"),
            {},
            "--max-sessions-per-user (OFFICESTATUS_MAX_SESSIONS_PER_USER) must be between 1 and",
            id="flag-negative",
        ),
        pytest.param(
            (),
            {"OFFICESTATUS_MAX_SESSIONS_PER_USER": "abc"},
            "OFFICESTATUS_MAX_SESSIONS_PER_USER must be a whole number (it is 'abc')",
            id="env-not-a-number",
        ),
        pytest.param(
            (),
            {"OFFICESTATUS_MAX_SESSIONS": "3000000000"},
            "--max-sessions (OFFICESTATUS_MAX_SESSIONS) must be between 1 and 1,000,000 (it is "
            "3000000000)",
            id="env-too-large",
        ),
    ],
)
async def test_a_session_bound_out_of_range_is_refused_before_anything_is_written(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], said: str
) -> None:
    data = tmp_path / "data"
    with pytest.raises(RuntimeError, match="exited before listening") as refused:
        await start_server_process(data, *args, env=env)
    assert said in str(refused.value)
    assert "SESSION_LIMIT_INVALID" in str(refused.value)
    assert "Traceback" not in str(refused.value)
    assert not data.exists() or list(data.iterdir()) == []
