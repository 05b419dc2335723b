"""Unauthenticated clients cannot deny service to others: scripts/attack.py's smoke run
(real server processes, real attackers, a legitimate client), and the limits one by one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from officestatus.licensing import seat_service_pb2 as spb
from officestatus.licensing import seat_service_pb2_grpc as spb_grpc
from tests.process import start_server_process

ROOT = Path(__file__).resolve().parent.parent


def test_the_attack_smoke_run_leaves_the_legitimate_client_served(tmp_path: Path) -> None:
    out = tmp_path / "attack.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "attack.py"), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    reports = {r["attack"]: r for r in json.loads(out.read_text())}
    for report in reports.values():
        # Every login of the legitimate client answered, granted, within a second.
        assert report["legit_failures"] == [], report
        assert report["legit_logins"] >= 10, report
        assert report["legit_slowest_ms"] < 1000, report
    connections = reports["connections"]
    # 2,000 connections on a server started with 1,024 open files: all were accepted
    # (the limit was raised), and the silent ones closed after the handshake time.
    assert connections["attacker_calls"] == 2000
    assert connections["notes"][0].startswith("2000 of 2000 silent TCP connections closed")
    padded = reports["padded"]
    assert padded["attacker_refusals"].get("INVALID_ARGUMENT", 0) > 0
    # Padded names and versions are never kept: memory stays on a plateau.
    assert padded["rss_mb_peak"] - padded["rss_mb_before"] < 50, padded
    silent = reports["silent calls"]
    # Every call that never sent its request was ended by the server.
    assert silent["attacker_refusals"] == {"DEADLINE_EXCEEDED": silent["attacker_calls"]}


async def test_a_client_request_over_16_kib_is_refused_unparsed(tmp_path: Path) -> None:
    server = await start_server_process(tmp_path / "data")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = spb_grpc.SeatServiceStub(channel)
            big = spb.LoginRequest(user_name="x" * (16 * 1024 + 1), client_version="6.0.0")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Login(big, timeout=5)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "at most 16,384" in (refused.value.details() or "")
            small = spb.LoginRequest(user_name="nobody", client_version="6.0.0")
            reply = await stub.Login(small, timeout=5)
            assert not reply.granted
    finally:
        code, out = await server.stop()
    assert code == 0
    assert "Traceback" not in out


async def test_connections_beyond_the_maximum_are_refused_and_others_served(
    tmp_path: Path,
) -> None:
    server = await start_server_process(tmp_path / "data", "--max-connections", "3")
    request = spb.LoginRequest(user_name="nobody", client_version="6.0.0")
    channels = [
        grpc.aio.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(5)
    ]
    try:
        codes = []
        for channel in channels:
            try:
                await spb_grpc.SeatServiceStub(channel).Login(request, timeout=3)
                codes.append("answered")
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code().name)
        assert codes == ["answered"] * 3 + ["UNAVAILABLE"] * 2
        await asyncio.gather(*(ch.close() for ch in channels[:3]))
        again = grpc.aio.insecure_channel(server.address)
        try:
            # A new client gets in once the server has seen the others go (it retries).
            await spb_grpc.SeatServiceStub(again).Login(request, timeout=10, wait_for_ready=True)
        finally:
            await again.close()
    finally:
        await asyncio.gather(*(ch.close() for ch in channels[3:]))
        code, _ = await server.stop()
    assert code == 0


async def test_a_port_in_use_is_refused_naming_the_address(tmp_path: Path) -> None:
    first = await start_server_process(tmp_path / "one")
    try:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "officestatus-server"),
            "--data-dir",
            str(tmp_path / "two"),
            "--listen",
            first.address,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode != 0
        assert f"cannot listen on {first.address}" in out.decode()
        assert "installation id:" not in out.decode()  # it never served
    finally:
        code, _ = await first.stop()
    assert code == 0


async def test_a_connection_with_no_call_is_closed_after_the_idle_time(tmp_path: Path) -> None:
    server = await start_server_process(tmp_path / "data", "--idle-seconds", "1")
    request = spb.LoginRequest(user_name="nobody", client_version="6.0.0")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            await spb_grpc.SeatServiceStub(channel).Login(request, timeout=5)
            assert channel.get_state() == grpc.ChannelConnectivity.READY
            # The server closes it (HTTP/2 GOAWAY): the channel falls back to IDLE.
            for _ in range(100):
                await asyncio.sleep(0.1)
                if channel.get_state() != grpc.ChannelConnectivity.READY:
                    break
            assert channel.get_state() == grpc.ChannelConnectivity.IDLE
            # A client reconnects by itself at its next call.
            await spb_grpc.SeatServiceStub(channel).Login(request, timeout=5)
    finally:
        code, _ = await server.stop()
    assert code == 0
