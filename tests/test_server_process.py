"""The real `officestatus-server` process: banner, owner-only files, health, reflection,
graceful stop on SIGTERM, and a restart that keeps everything."""

from __future__ import annotations

import stat
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from officestatus.admin import admin_service_pb2 as apb
from officestatus.admin import admin_service_pb2_grpc as apb_grpc
from officestatus.licensing import seat_service_pb2 as spb
from officestatus.licensing import seat_service_pb2_grpc as spb_grpc
from tests.process import start_server_process
from tests.support import Vendor

ROOT = Path(__file__).resolve().parent.parent


def _readme_banner() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```\nOfficeStatus License Server ") + len("```\n")
    return readme[start : readme.index("```", start)]


def _line_heads(banner: str) -> list[str]:
    """What each line says before its first value: "data directory", "licensing"..."""
    lines = banner.strip().splitlines()
    # What the server logged while starting comes before the banner.
    first = next(i for i, line in enumerate(lines) if " listening on " in line)
    heads = []
    for line in lines[first:]:
        head = line.split(":", 1)[0]
        heads.append(head.rsplit(" listening on", 1)[0].rstrip("0123456789. "))
    return heads


def _metadata(data_dir: Path) -> tuple[tuple[str, str], ...]:
    token = (data_dir / "admin-token").read_text().strip()
    return (("authorization", f"Bearer {token}"),)


async def test_first_start_prints_where_things_are_and_creates_owner_only_files(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = await start_server_process(data)
    try:
        assert f"data directory: {data}" in server.banner
        assert f"admin token: {data / 'admin-token'}" in server.banner
        assert "licensing: evaluation, 30 days left" in server.banner
        assert "protobuf backend: upb" in server.banner
        # The README shows the banner line for line, each with what it starts with.
        assert _line_heads(server.banner) == _line_heads(_readme_banner())
        for name in ("admin-token", "officestatus.db"):
            mode = stat.S_IMODE((data / name).stat().st_mode)
            assert mode & 0o077 == 0, f"{name} is readable by others: {oct(mode)}"
    finally:
        code, out = await server.stop()
    assert code == 0
    assert "stopped" in out


async def test_health_and_reflection_answer_like_any_grpc_server(tmp_path: Path) -> None:
    server = await start_server_process(tmp_path / "data")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in (
                "",
                "officestatus.licensing.SeatService",
                "officestatus.admin.AdminService",
            ):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, service

            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            names = set()
            async for answer in reflection.ServerReflectionInfo(iter([request])):
                names = {s.name for s in answer.list_services_response.service}
            assert {
                "officestatus.licensing.SeatService",
                "officestatus.admin.AdminService",
                "grpc.health.v1.Health",
            } <= names
    finally:
        await server.stop()


async def test_sigterm_turns_health_not_serving_then_exits_cleanly(tmp_path: Path) -> None:
    server = await start_server_process(tmp_path / "data")
    async with grpc.aio.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        server.process.terminate()
        second = await watch.read()
        assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
    code, out = await server.stop()
    assert code == 0
    assert "stopped" in out


async def test_restart_keeps_licenses_users_and_sessions(tmp_path: Path, vendor: Vendor) -> None:
    data = tmp_path / "data"
    pub = vendor.write_public_key(tmp_path)
    server = await start_server_process(data, "--vendor-key", str(pub))
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            admin = apb_grpc.AdminServiceStub(channel)
            md = _metadata(data)
            await admin.InstallLicense(apb.InstallLicenseRequest(key=vendor.issue(25)), metadata=md)
            await admin.AddUsers(
                apb.AddUsersRequest(user_names=["Alice", "bob"], enable=True), metadata=md
            )
            seat = spb_grpc.SeatServiceStub(channel)
            login = await seat.Login(spb.LoginRequest(user_name="alice", client_version="5.1.0"))
            assert login.granted
            before = await admin.GetStatus(apb.GetStatusRequest(), metadata=md)
    finally:
        await server.stop()

    server = await start_server_process(data, "--vendor-key", str(pub))
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            admin = apb_grpc.AdminServiceStub(channel)
            after = await admin.GetStatus(apb.GetStatusRequest(), metadata=_metadata(data))
            users = await admin.ListUsers(apb.ListUsersRequest(), metadata=_metadata(data))
            seat = spb_grpc.SeatServiceStub(channel)
            beat = await seat.Heartbeat(spb.HeartbeatRequest(session_id=login.session_id))
    finally:
        await server.stop()
    assert after.status.seats_total == before.status.seats_total == 25
    assert after.status.seats_used == 2
    assert after.status.installation_id == before.status.installation_id
    assert [(u.name, u.enabled) for u in users.users] == [("Alice", True), ("bob", True)]
    # A 5.x client is not signed out because the server restarted.
    assert beat.granted
