"""Who is signed in: `officestatus-admin sessions` against a real server, with clients of
every release speaking their own released schemas (tests/legacy.py).

5.x and 6.x clients hold sessions, listed with machine, client, since and last heartbeat;
3.x and 4.x clients hold none, so their last login per user and machine is listed,
marked, kept across a clean restart and bounded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest

from officestatus_client import AdminClient, NotFoundError
from tests.legacy import LegacyClient
from tests.support import START, RunningServer, admin_cli


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as opened:
        yield opened


async def _sign_in_everyone(server: RunningServer, channel: grpc.aio.Channel) -> dict[str, str]:
    """alice on 5.x, bob on 6.x (sessions), carol on 4.x and dave on 3.x (none); returns
    the session ids by user."""
    async with AdminClient(server.address, server.token) as admin:
        await admin.add_users(["alice", "bob", "carol", "dave"], enable=True)
    v5, v6 = LegacyClient("v5", channel), LegacyClient("current", channel)
    v4, v3 = LegacyClient("v4", channel), LegacyClient("v3", channel)
    alice = await v5.Login(user_name="alice", client_version="5.1.3", machine_name="PC-A")
    server.clock.advance(seconds=10)
    bob = await v6.Login(user_name="bob", client_version="6.0.0", machine_name="PC-B")
    await v4.Login(user_name="carol", client_version="4.2.0", machine_name="PC-C")
    await v3.Login(user_name="dave", client_version="3.4.2")
    assert alice.msg.granted
    assert bob.msg.granted
    return {"alice": alice.msg.session_id, "bob": bob.msg.session_id}


async def test_sessions_and_last_logins_of_every_release_are_listed(
    server: RunningServer, channel: grpc.aio.Channel
) -> None:
    sessions = await _sign_in_everyone(server, channel)
    server.clock.advance(seconds=20)
    heartbeat = await LegacyClient("v5", channel).Heartbeat(session_id=sessions["alice"])
    assert heartbeat.msg.granted

    async with AdminClient(server.address, server.token) as admin:
        lines = {line.user_name: line for line in await admin.sessions()}

    assert set(lines) == {"alice", "bob", "carol", "dave"}
    alice, bob, carol, dave = (lines[n] for n in ("alice", "bob", "carol", "dave"))
    assert (alice.session, alice.machine_name, alice.client_version, alice.client_release) == (
        True,
        "PC-A",
        "5.1.3",
        5,
    )
    assert alice.signed_in_at == START
    assert alice.last_heartbeat_at == START + timedelta(seconds=30)
    assert (bob.session, bob.machine_name, bob.client_version, bob.client_release) == (
        True,
        "PC-B",
        "6.0.0",
        6,
    )
    # bob has not heartbeated: last heard from at his login.
    assert bob.signed_in_at == bob.last_heartbeat_at == START + timedelta(seconds=10)
    assert (carol.session, carol.machine_name, carol.client_release) == (False, "PC-C", 4)
    assert carol.signed_in_at == START + timedelta(seconds=10)
    assert carol.last_heartbeat_at is None
    # 3.x sends no machine name: none is made up.
    assert (dave.session, dave.machine_name, dave.client_version) == (False, None, "3.4.2")

    code, out, _ = await admin_cli(server, "sessions")
    assert code == 0
    assert out.splitlines()[0].startswith("2 live sessions, 2 last logins of 3.x and 4.x")
    table = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "PC-A" in table["alice"]
    assert "5.1.3" in table["alice"]
    assert table["carol"].endswith("last login, 4.x: no session")
    assert table["dave"].split()[1] == "unknown"
    assert table["dave"].endswith("last login, 3.x: no session")


async def test_a_refused_login_is_no_last_login(
    server: RunningServer, channel: grpc.aio.Channel
) -> None:
    async with AdminClient(server.address, server.token) as admin:
        await admin.add_users(["erin"])  # disabled
        v4 = LegacyClient("v4", channel)
        assert not (await v4.Login(user_name="erin", client_version="4.2.0")).msg.granted
        assert not (await v4.Login(user_name="nobody", client_version="4.2.0")).msg.granted
        assert await admin.sessions() == []
    code, out, _ = await admin_cli(server, "sessions")
    assert (code, out.strip()) == (
        0,
        "Nobody is signed in: no live session, no last login of a 3.x or 4.x client.",
    )


async def test_the_listing_filtered_by_user_and_as_json(
    server: RunningServer, channel: grpc.aio.Channel
) -> None:
    await _sign_in_everyone(server, channel)
    # carol logs in from a second machine: one line per (user, machine).
    v4 = LegacyClient("v4", channel)
    await v4.Login(user_name="Carol", client_version="4.2.0", machine_name="LAPTOP-C")
    await v4.Login(user_name="carol", client_version="4.2.0", machine_name="PC-C")

    code, out, _ = await admin_cli(server, "sessions", "--user", "CAROL", "--json")
    assert code == 0
    data: dict[str, Any] = json.loads(out)
    assert (data["format"], data["version"]) == ("officestatus-admin", 1)
    assert (data["total"], data["offset"]) == (2, 0)
    assert [(s["user_name"], s["machine_name"], s["session"]) for s in data["sessions"]] == [
        ("carol", "LAPTOP-C", False),
        ("carol", "PC-C", False),
    ]
    assert data["sessions"][1]["last_heartbeat_at"] is None

    code, out, _ = await admin_cli(server, "sessions", "--user", "alice")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["alice"]

    code, out, err = await admin_cli(server, "sessions", "--user", "zed")
    assert code != 0
    assert "No user is named 'zed'" in err
    async with AdminClient(server.address, server.token) as admin:
        with pytest.raises(NotFoundError):
            await admin.sessions("zed")


async def test_the_listing_comes_in_pages_with_a_total(
    server: RunningServer, channel: grpc.aio.Channel
) -> None:
    names = [f"user{i:02d}" for i in range(12)]
    async with AdminClient(server.address, server.token) as admin:
        await admin.add_users(names, enable=True)
        v6 = LegacyClient("current", channel)
        for name in names:
            await v6.Login(user_name=name, client_version="6.0.0", machine_name=f"M-{name}")
        first = await admin.sessions_page(limit=5)
        third = await admin.sessions_page(offset=10, limit=5)
        everyone = await admin.sessions(page_size=5)
    assert (first.total, len(first.sessions)) == (12, 5)
    assert [s.user_name for s in third.sessions] == names[10:]
    assert [s.user_name for s in everyone] == names

    code, out, _ = await admin_cli(server, "sessions", "--limit", "5", "--offset", "5")
    assert code == 0
    assert out.splitlines()[-1] == "Lines 6 to 10 of 12; the next: --offset 10."


async def test_last_logins_survive_a_clean_restart_sessions_keep_where_from(
    server: RunningServer, channel: grpc.aio.Channel
) -> None:
    sessions = await _sign_in_everyone(server, channel)
    await server.restart()
    async with grpc.aio.insecure_channel(server.address) as again:
        resumed = await LegacyClient("v5", again).Heartbeat(session_id=sessions["alice"])
    assert resumed.msg.granted
    async with AdminClient(server.address, server.token) as admin:
        lines = {line.user_name: line for line in await admin.sessions()}
    assert set(lines) == {"alice", "carol", "dave"}  # bob has not heartbeated yet
    assert (lines["carol"].machine_name, lines["carol"].client_version) == ("PC-C", "4.2.0")
    assert lines["carol"].signed_in_at == START + timedelta(seconds=10)
    assert lines["dave"].machine_name is None
    # A resumed session keeps where and since when it signed in.
    assert (lines["alice"].machine_name, lines["alice"].signed_in_at) == ("PC-A", START)


async def test_last_logins_are_bounded_forgetting_the_oldest(
    server: RunningServer, channel: grpc.aio.Channel
) -> None:
    server.config = dataclasses.replace(server.config, max_last_logins=3)
    await server.restart()
    async with grpc.aio.insecure_channel(server.address) as opened:
        async with AdminClient(server.address, server.token) as admin:
            await admin.add_users(["ann"], enable=True)
        v4 = LegacyClient("v4", opened)
        for machine in ("M1", "M2", "M3", "M4"):
            await v4.Login(user_name="ann", client_version="4.2.0", machine_name=machine)
            server.clock.advance(seconds=1)
        # M2 logs in again: now the most recent, so M3 is forgotten next.
        await v4.Login(user_name="ann", client_version="4.2.0", machine_name="M2")
        await v4.Login(user_name="ann", client_version="4.2.0", machine_name="M5")
    await server.restart()  # the database holds no more than memory did
    async with AdminClient(server.address, server.token) as admin:
        kept = [line.machine_name for line in await admin.sessions()]
    assert sorted(m or "" for m in kept) == ["M2", "M4", "M5"]


async def test_machine_names_are_clipped_and_control_characters_replaced(
    server: RunningServer, channel: grpc.aio.Channel
) -> None:
    async with AdminClient(server.address, server.token) as admin:
        await admin.add_users(["ann"], enable=True)
        v4 = LegacyClient("v4", channel)
        await v4.Login(user_name="ann", client_version="4.2.0", machine_name="\x1b[2J" + "x" * 5000)
        [line] = await admin.sessions()
    assert line.machine_name is not None
    assert len(line.machine_name) == 64
    assert line.machine_name.startswith("?[2Jxxx")
    assert line.machine_name.endswith("…")
