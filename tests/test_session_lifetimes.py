"""Sessions against a real server (real gRPC, real SQLite file): liveness on the monotonic
clock whatever the wall clock does, the bounds per user and in all with the reason the
ended client hears, and sessions that ended staying ended across a restart."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from officestatus.licensing import seat_service_pb2 as pb
from officestatus.licensing import seat_service_pb2_grpc as pb_grpc
from officestatus_client import AdminClient
from tests.support import RunningServer

HEARTBEAT = 30  # the `server` fixture's heartbeat interval, in seconds
STALE = 3 * HEARTBEAT + 1  # past three missed heartbeats
ENDED = "Your OfficeStatus session has ended. Sign in again."
# 5.x knows no SESSION_ENDED: it gets no reason, and the message.
ENDED_REASON = {"5.1.3": pb.DENY_REASON_UNSPECIFIED, "6.0.0": pb.DENY_REASON_SESSION_ENDED}


class Seat:
    """A client of the seat service."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = pb_grpc.SeatServiceStub(channel)

    async def login(self, user: str, version: str = "6.0.0") -> str:
        reply = await self.stub.Login(pb.LoginRequest(user_name=user, client_version=version))
        assert reply.granted, reply.message
        return str(reply.session_id)

    async def heartbeat(self, session_id: str) -> pb.HeartbeatReply:
        return await self.stub.Heartbeat(pb.HeartbeatRequest(session_id=session_id))

    async def logout(self, session_id: str) -> None:
        await self.stub.Logout(pb.LogoutRequest(session_id=session_id))


async def _with_seat(server: RunningServer) -> tuple[grpc.aio.Channel, Seat]:
    channel = grpc.aio.insecure_channel(server.address)
    return channel, Seat(channel)


async def _licensed(server: RunningServer, admin: AdminClient, *users: str) -> None:
    """Purchased seats, so the logins stay granted whatever the clock does."""
    await admin.install_license(server.vendor.issue(25))
    await admin.add_users(list(users), enable=True)


async def _status_sessions(server: RunningServer) -> int:
    async with AdminClient(server.address, server.token) as admin:
        return (await admin.status()).active_sessions


# --- the wall clock may jump; a session's age does not --------------------------------


async def test_sessions_opened_while_the_clock_ran_40_days_ahead_expire(
    server: RunningServer, admin: AdminClient
) -> None:
    """The wall clock jumps 40 days ahead, a user signs in, the clock is set right: the
    session still ends after three missed heartbeats, and so do the ones opened later."""
    await _licensed(server, admin, "alice", "bob")
    channel, seat = await _with_seat(server)
    async with channel:
        server.clock.jump(days=40)
        ahead = await seat.login("alice")
        server.clock.jump(days=-40)
        after = await seat.login("bob")
        assert await _status_sessions(server) == 2

        server.clock.advance(seconds=STALE)

        assert await _status_sessions(server) == 0
        for session in (ahead, after):
            reply = await seat.heartbeat(session)
            assert (reply.granted, reply.reason) == (False, pb.DENY_REASON_SESSION_ENDED)
            assert reply.message == ENDED
        # The sweep goes on: a session opened now ends in its time too.
        later = await seat.login("bob")
        server.clock.advance(seconds=STALE)
        assert await _status_sessions(server) == 0
        assert not (await seat.heartbeat(later)).granted


@pytest.mark.parametrize("days", [40, -40], ids=["ahead", "back"])
async def test_a_clock_jump_does_not_end_a_live_session(
    server: RunningServer, admin: AdminClient, days: int
) -> None:
    await _licensed(server, admin, "alice")
    channel, seat = await _with_seat(server)
    async with channel:
        session = await seat.login("alice")
        server.clock.advance(seconds=HEARTBEAT)

        server.clock.jump(days=days)

        assert (await seat.heartbeat(session)).granted
        assert await _status_sessions(server) == 1
        server.clock.advance(seconds=HEARTBEAT)
        assert (await seat.heartbeat(session)).granted


async def test_the_first_status_after_a_set_back_agrees_with_the_logins(
    server: RunningServer, admin: AdminClient
) -> None:
    """In the evaluation, the clock is set back a day: the admin's very next status
    shows the evaluation ended, as the login that follows decides."""
    await admin.add_users(["alice"], enable=True)
    assert (await admin.status()).evaluation

    server.clock.jump(days=-1)
    status = await admin.status()
    channel, seat = await _with_seat(server)
    async with channel:
        login = await seat.stub.Login(pb.LoginRequest(user_name="alice", client_version="6.0.0"))

    assert not login.granted
    assert login.reason == pb.DENY_REASON_EVALUATION_EXPIRED
    assert not status.evaluation
    assert status.evaluation_expired
    assert status.clock_warning
    assert not login.license.evaluation


# --- bounds -----------------------------------------------------------------------------


async def _bounded(server: RunningServer, users: list[str], **bounds: int) -> None:
    """Restart with these bounds; then add the users, enabled."""
    server.config = dataclasses.replace(server.config, **bounds)  # type: ignore[arg-type]
    await server.restart()
    async with AdminClient(server.address, server.token) as admin:
        await admin.add_users(users, enable=True)


@pytest.mark.parametrize("version", ["5.1.3", "6.0.0"])
async def test_a_users_login_beyond_the_bound_ends_the_oldest_session(
    server: RunningServer, version: str
) -> None:
    await _bounded(server, ["Alice", "bob"], max_sessions_per_user=3)
    channel, seat = await _with_seat(server)
    async with channel:
        oldest = await seat.login("alice", version)
        others = [await seat.login("alice", version) for _ in range(2)]
        bob = await seat.login("bob", version)
        server.clock.advance(seconds=5)
        assert (await seat.heartbeat(oldest)).granted  # recently seen, still the oldest

        newest = await seat.login("ALICE", version)

        ended = await seat.heartbeat(oldest)
        assert not ended.granted
        assert ended.reason == ENDED_REASON[version]
        assert ended.message == (
            "This session was ended because Alice signed in on more than 3 machines; sign in again."
        )
        assert all([(await seat.heartbeat(s)).granted for s in (*others, newest, bob)])
        assert await _status_sessions(server) == 4
        # Told once more if asked again, and it stays ended.
        assert not (await seat.heartbeat(oldest)).granted


async def test_a_login_beyond_the_total_bound_ends_the_least_recently_seen_session(
    server: RunningServer,
) -> None:
    await _bounded(server, ["alice", "bob", "carol", "dave"], max_sessions=3)
    channel, seat = await _with_seat(server)
    async with channel:
        alice, bob, carol = [await seat.login(u) for u in ("alice", "bob", "carol")]
        server.clock.advance(seconds=5)
        assert (await seat.heartbeat(alice)).granted

        dave = await seat.login("dave")

        ended = await seat.heartbeat(bob)
        assert (ended.granted, ended.reason) == (False, pb.DENY_REASON_SESSION_ENDED)
        assert ended.message == (
            "This session was ended because the OfficeStatus License Server holds at most "
            "3 sessions and this one had been idle longest; sign in again."
        )
        assert all([(await seat.heartbeat(s)).granted for s in (alice, carol, dave)])
        assert await _status_sessions(server) == 3


async def test_endless_logins_without_logout_stay_within_the_bounds(server: RunningServer) -> None:
    users = [f"user{i}" for i in range(30)]
    await _bounded(server, ["alice", *users], max_sessions_per_user=5, max_sessions=40)
    channel, seat = await _with_seat(server)
    async with channel:
        for _ in range(3):
            for user in users:
                await seat.login("alice")
                await seat.login(user)
            assert await _status_sessions(server) <= 40
        assert await _status_sessions(server) == 40
        last = [await seat.login("alice") for _ in range(5)]
        assert all([(await seat.heartbeat(s)).granted for s in last])


# --- ended sessions stay ended across a restart -------------------------------------------


@pytest.mark.parametrize("version", ["5.1.3", "6.0.0"])
async def test_logged_out_and_expired_sessions_stay_ended_after_a_restart(
    server: RunningServer, admin: AdminClient, version: str
) -> None:
    await admin.add_users(["alice", "bob", "carol"], enable=True)
    channel, seat = await _with_seat(server)
    async with channel:
        alice, bob, carol = [await seat.login(u, version) for u in ("alice", "bob", "carol")]
        await seat.logout(alice)
        server.clock.advance(seconds=60)
        assert (await seat.heartbeat(bob)).granted
        server.clock.advance(seconds=31)  # carol missed three heartbeats
        assert (await seat.heartbeat(bob)).granted

    await server.restart()

    channel, seat = await _with_seat(server)
    async with channel:
        for session in (alice, carol):
            ended = await seat.heartbeat(session)
            assert (ended.granted, ended.reason, ended.message) == (
                False,
                ENDED_REASON[version],
                ENDED,
            )
        assert (await seat.heartbeat(bob)).granted
        assert await _status_sessions(server) == 1

    # And after one more restart: bob resumed, alice and carol still ended.
    server.clock.advance(seconds=HEARTBEAT)
    await server.restart()
    channel, seat = await _with_seat(server)
    async with channel:
        assert (await seat.heartbeat(bob)).granted
        assert not (await seat.heartbeat(alice)).granted
        assert not (await seat.heartbeat(carol)).granted


async def test_a_session_ended_for_the_bound_stays_ended_after_a_restart(
    server: RunningServer,
) -> None:
    await _bounded(server, ["alice"], max_sessions_per_user=1)
    channel, seat = await _with_seat(server)
    async with channel:
        first = await seat.login("alice")
        second = await seat.login("alice")

    await server.restart()

    channel, seat = await _with_seat(server)
    async with channel:
        assert not (await seat.heartbeat(first)).granted
        assert (await seat.heartbeat(second)).granted


async def test_sessions_not_resumed_soon_after_a_restart_are_forgotten(
    server: RunningServer, admin: AdminClient
) -> None:
    """A session whose client did not heartbeat within three intervals of the restart
    ended: a later heartbeat is refused, and a later restart does not bring it back."""
    await admin.add_users(["alice", "bob"], enable=True)
    channel, seat = await _with_seat(server)
    async with channel:
        alice, bob = await seat.login("alice"), await seat.login("bob")
    await server.restart()
    channel, seat = await _with_seat(server)
    async with channel:
        assert (await seat.heartbeat(alice)).granted
        for _ in range(4):
            server.clock.advance(seconds=HEARTBEAT)
            assert (await seat.heartbeat(alice)).granted
        assert not (await seat.heartbeat(bob)).granted

    await server.restart()

    channel, seat = await _with_seat(server)
    async with channel:
        assert (await seat.heartbeat(alice)).granted
        assert not (await seat.heartbeat(bob)).granted
