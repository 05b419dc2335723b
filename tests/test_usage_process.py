"""The usage history of the real `officestatus-server` process: what a flush wrote
survives a SIGKILL; at most the last flush interval of it is lost."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from officestatus_client import AdminClient, SeatClient
from officestatus_client.admin_cli import run as admin_run
from tests.process import ServerProcess, start_server_process

FLUSH_SECONDS = 1


async def _usage(server: ServerProcess, data: Path) -> dict[str, object]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["--address", server.address, "--data-dir", str(data), "usage", "--json"]
    code = await admin_run(argv, out, err)
    assert code == 0, err.getvalue()
    document: dict[str, object] = json.loads(out.getvalue())
    return document


async def _log_in(server: ServerProcess, *names: str) -> None:
    async with SeatClient(server.address, "6.0.0") as seat:
        for name in names:
            await seat.login(name)


async def test_the_history_flushed_before_a_sigkill_is_there_after_the_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = await start_server_process(data, "--usage-flush-seconds", str(FLUSH_SECONDS))
    try:
        token = (data / "admin-token").read_text().strip()
        async with AdminClient(server.address, token) as admin:
            await admin.add_users(["alice", "bob", "carol"], enable=True)
        await _log_in(server, "alice", "bob", "carol", "mallory")
        # Two flush intervals and a half: the first logins are written down.
        await asyncio.sleep(2.5 * FLUSH_SECONDS)
        await _log_in(server, "alice", "bob")  # these may be lost with the last interval
    finally:
        await server.kill()

    server = await start_server_process(data, "--usage-flush-seconds", str(FLUSH_SECONDS))
    try:
        usage = await _usage(server, data)
    finally:
        code, _ = await server.stop()
    assert code == 0
    days = usage["days"]
    assert isinstance(days, list)
    granted = sum(int(day["logins_granted"]) for day in days)
    assert 3 <= granted <= 5
    assert sum(int(day["logins_denied"]) for day in days) == 1
    assert usage["denials"] == [{"reason": "USER_UNKNOWN", "client_release": 6, "count": 1}]
    assert max(int(day["peak_enabled_users"]) for day in days) == 3
    assert max(int(day["peak_live_sessions"]) for day in days) == 3
    assert usage["flush_seconds"] == FLUSH_SECONDS


async def test_a_clean_stop_writes_the_history_and_flush_0_keeps_none(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # A flush interval longer than the test: only the clean stop writes it.
    server = await start_server_process(data, "--usage-flush-seconds", "3600")
    try:
        token = (data / "admin-token").read_text().strip()
        async with AdminClient(server.address, token) as admin:
            await admin.add_users(["alice"], enable=True)
        await _log_in(server, "alice", "alice")
    finally:
        code, _ = await server.stop()
    assert code == 0

    server = await start_server_process(data, "--usage-flush-seconds", "0")
    try:
        await _log_in(server, "alice")
        usage = await _usage(server, data)
    finally:
        code, _ = await server.stop()
    assert code == 0
    days = usage["days"]
    assert isinstance(days, list)
    # The two logins of the first run, none of the second (no history kept).
    assert [int(day["logins_granted"]) for day in days] == [2]
    assert usage["flush_seconds"] == 0
