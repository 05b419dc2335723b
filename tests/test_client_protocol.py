"""The client protocol end to end, as each deployed client release sees it on the wire.

Every call goes to a real server on a free port (real SQLite file, a FakeClock the tests
move). Replies are read as raw bytes off the wire and decoded twice: by the generated
6.x stubs (what a 6.x client reads) and tag by tag (which field numbers were actually
sent), so a reply to a 3.x, 4.x or 5.x client can be checked to carry only what that
release was compiled against (/work/shared/legacy-clients.md):

    3.x   LoginReply 1..2
    4.x   LoginReply 1..3, DenyReason 0..4, LicenseStatusReply 1..4
    5.x   LoginReply 1..5, DenyReason 0..4, LicenseStatusReply 1..5, Heartbeat, Logout
    6.x   everything, typed SeatClient too

The AdminClient sets up licenses and users, as an admin would.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest

from officestatus.licensing import seat_service_pb2 as pb
from officestatus_client import (
    AdminClient,
    DenyReason,
    LicenseInfo,
    PreconditionFailedError,
    SeatClient,
    Status,
)
from tests.messages import (
    DISABLED,
    EVALUATION_EXPIRED,
    NOT_LICENSED,
    OVER_CAPACITY,
    SESSION_ENDED,
    UNKNOWN,
    WELCOME,
    WELCOME_EVALUATION,
)
from tests.support import RunningServer
from tests.wire import TIMEOUT, Reply, Wire, error_info, set_fields

HEARTBEAT = 30  # the `server` fixture's heartbeat interval, in seconds

# The client releases, by the version string each one sends ("" is served as 3.x).
VERSIONS = [
    pytest.param("", id="no-version"),
    pytest.param("3.4.2", id="3.4.2"),
    pytest.param("4.2.0", id="4.2.0"),
    pytest.param("5.1.3", id="5.1.3"),
    pytest.param("6.0.0", id="6.0.0"),
]
LEGACY_VERSIONS = VERSIONS[:4]

# What each release was compiled against.
LOGIN_FIELDS = {3: {1, 2}, 4: {1, 2, 3}, 5: {1, 2, 3, 4, 5}, 6: {1, 2, 3, 4, 5, 6}}
STATUS_FIELDS = {4: {1, 2, 3, 4}, 5: {1, 2, 3, 4, 5}, 6: {1, 2, 3, 4, 5, 6}}
LEGACY_MAX_REASON = pb.DENY_REASON_EVALUATION_EXPIRED  # 4: the last value 4.x and 5.x know
# The 6.x reasons, as the releases that read a reason but predate them are sent them.
STAND_INS: dict[int, int] = {
    pb.DENY_REASON_OVER_CAPACITY: pb.DENY_REASON_NOT_LICENSED,
    pb.DENY_REASON_SESSION_ENDED: pb.DENY_REASON_UNSPECIFIED,
}

EMPTY_NAME = "A user name cannot be empty. Sign in with your user name."


def release_of(version: str) -> int:
    """The protocol release a version string is served as."""
    return int(version.split(".")[0]) if version else 3


@pytest.fixture
async def wire(server: RunningServer) -> AsyncIterator[Wire]:
    """The client protocol of `server`, over a raw channel."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield Wire(server, channel)


@pytest.fixture
async def admin(server: RunningServer) -> AsyncIterator[AdminClient]:
    """The admin of `server`."""
    async with AdminClient(server.address, server.token) as client:
        yield client


def assert_login_shape(reply: Reply[pb.LoginReply], version: str) -> None:
    """What the release may see of a LoginReply, and only that."""
    release = release_of(version)
    msg = reply.msg
    assert reply.fields <= LOGIN_FIELDS[release], (version, reply.fields)
    assert 2 in reply.fields  # there is always a message to show
    assert (1 in reply.fields) == msg.granted
    if release < 6:
        assert 6 not in reply.fields
        assert msg.reason <= LEGACY_MAX_REASON
    if release < 5:
        assert not reply.fields & {4, 5}
    if release < 4:
        assert 3 not in reply.fields
    # A session (and a heartbeat interval) exactly when 5.x or later is granted.
    assert (4 in reply.fields) == (5 in reply.fields) == (msg.granted and release >= 5)
    assert (6 in reply.fields) == (release >= 6)


def sent_reason(version: str, reason: int) -> int | None:
    """The DenyReason `version` is sent for `reason`; None: no reason field at all."""
    release = release_of(version)
    if release < 4:
        return None
    if release < 6:
        return STAND_INS.get(reason, reason)
    return reason


# --- scenarios an admin sets up -------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A state of the server and a user logging in to it, with what the server decides."""

    user: str
    reason: int  # as a 6.x client gets it; pb.DENY_REASON_UNSPECIFIED when granted
    message: str
    license: LicenseInfo

    @property
    def granted(self) -> bool:
        return self.reason == pb.DENY_REASON_UNSPECIFIED


def _info(seats: int = 0, used: int = 0, evaluation: bool = False, days: int = 0) -> LicenseInfo:
    return LicenseInfo(
        seats_total=seats,
        seats_used=used,
        evaluation=evaluation,
        evaluation_days_left=days,
        major_version=6,
        unlimited=evaluation,
    )


async def granted_in_evaluation(server: RunningServer, admin: AdminClient) -> Scenario:
    await admin.add_users(["alice"], enable=True)
    return Scenario(
        "alice",
        pb.DENY_REASON_UNSPECIFIED,
        WELCOME_EVALUATION.format(name="alice", days=30),
        _info(used=1, evaluation=True, days=30),
    )


async def granted_licensed(server: RunningServer, admin: AdminClient) -> Scenario:
    await admin.install_license(server.vendor.issue(25))
    await admin.add_users(["alice", "bob"], enable=True)
    return Scenario("alice", pb.DENY_REASON_UNSPECIFIED, WELCOME.format(name="alice"), _info(25, 2))


async def unknown_user(server: RunningServer, admin: AdminClient) -> Scenario:
    await admin.add_users(["alice"], enable=True)
    return Scenario(
        "mallory",
        pb.DENY_REASON_USER_UNKNOWN,
        UNKNOWN.format(name="mallory"),
        _info(used=1, evaluation=True, days=30),
    )


async def disabled_user(server: RunningServer, admin: AdminClient) -> Scenario:
    await admin.add_users(["alice"])
    return Scenario(
        "alice",
        pb.DENY_REASON_USER_DISABLED,
        DISABLED.format(name="alice"),
        _info(evaluation=True, days=30),
    )


async def not_licensed(server: RunningServer, admin: AdminClient) -> Scenario:
    """A purchase ended the evaluation, then its license was removed: no seats at all."""
    await admin.add_users(["alice"], enable=True)
    lic, _ = await admin.install_license(server.vendor.issue(25))
    _, status = await admin.remove_license(lic.license_id, force=True)
    assert (status.seats_total, status.evaluation, status.evaluation_expired) == (0, False, False)
    return Scenario("alice", pb.DENY_REASON_NOT_LICENSED, NOT_LICENSED, _info())


async def evaluation_expired(server: RunningServer, admin: AdminClient) -> Scenario:
    await admin.add_users(["alice"], enable=True)
    server.clock.advance(days=31)
    return Scenario("alice", pb.DENY_REASON_EVALUATION_EXPIRED, EVALUATION_EXPIRED, _info())


async def over_capacity(server: RunningServer, admin: AdminClient) -> Scenario:
    """3 + 2 seats, five users enabled, the 2-seat license removed: u4, u5 are over."""
    await admin.install_license(server.vendor.issue(3))
    two, _ = await admin.install_license(server.vendor.issue(2))
    await admin.add_users(["u1", "u2", "u3", "u4", "u5"], enable=True)
    _, status = await admin.remove_license(two.license_id, force=True)
    assert status.over_capacity == ("u4", "u5")
    return Scenario("u5", pb.DENY_REASON_OVER_CAPACITY, OVER_CAPACITY, _info(3, 3))


Setup = Callable[[RunningServer, AdminClient], Awaitable[Scenario]]
SCENARIOS = [
    pytest.param(granted_in_evaluation, id="granted-evaluation"),
    pytest.param(granted_licensed, id="granted-licensed"),
    pytest.param(unknown_user, id="unknown-user"),
    pytest.param(disabled_user, id="disabled-user"),
    pytest.param(not_licensed, id="not-licensed"),
    pytest.param(evaluation_expired, id="evaluation-expired"),
    pytest.param(over_capacity, id="over-capacity"),
]


# --- Login, as each release sees it ---------------------------------------------------


@pytest.mark.parametrize("setup", SCENARIOS)
@pytest.mark.parametrize("version", VERSIONS)
async def test_login_as_each_release_sees_it(
    server: RunningServer, admin: AdminClient, wire: Wire, setup: Setup, version: str
) -> None:
    scenario = await setup(server, admin)

    reply = await wire.login(scenario.user, version, machine="PC-042")
    # The same call through the generated stub reads the same fields.
    request = pb.LoginRequest(
        user_name=scenario.user, client_version=version, machine_name="PC-042"
    )
    via_stub = await wire.stub.Login(request, timeout=TIMEOUT)

    assert set_fields(via_stub) == reply.fields
    assert (via_stub.granted, via_stub.reason, via_stub.message, via_stub.license) == (
        reply.msg.granted,
        reply.msg.reason,
        reply.msg.message,
        reply.msg.license,
    )
    assert_login_shape(reply, version)
    msg = reply.msg
    assert msg.granted is scenario.granted
    assert msg.message == scenario.message
    expected = sent_reason(version, scenario.reason)
    if expected is None:
        assert 3 not in reply.fields
    else:
        assert msg.reason == expected
    if scenario.granted and release_of(version) >= 5:
        assert msg.session_id
        assert msg.heartbeat_interval_seconds == HEARTBEAT
    if release_of(version) >= 6:
        info = msg.license
        got = LicenseInfo(
            info.seats_total,
            info.seats_used,
            info.evaluation,
            info.evaluation_days_left,
            info.major_version,
            info.unlimited,
        )
        assert got == scenario.license


@pytest.mark.parametrize("setup", SCENARIOS)
async def test_login_with_the_typed_6x_client(
    server: RunningServer, admin: AdminClient, setup: Setup
) -> None:
    scenario = await setup(server, admin)

    async with SeatClient(server.address) as client:
        result = await client.login(scenario.user, machine_name="PC-042")

    assert result.granted is scenario.granted
    assert result.reason == DenyReason(scenario.reason)
    assert result.message == scenario.message
    assert result.license == scenario.license
    if scenario.granted:
        assert result.session_id
        assert result.heartbeat_interval_seconds == HEARTBEAT
    else:
        assert (result.session_id, result.heartbeat_interval_seconds) == ("", 0)


async def test_over_capacity_users_enabled_first_keep_their_seats(
    server: RunningServer, admin: AdminClient, wire: Wire
) -> None:
    await over_capacity(server, admin)

    for user in ("u1", "u2", "u3"):
        assert (await wire.login(user, "6.0.0")).msg.granted
    for user in ("u4", "u5"):
        reply = (await wire.login(user, "6.0.0")).msg
        assert (reply.granted, reply.reason) == (False, pb.DENY_REASON_OVER_CAPACITY)

    # The admin frees a seat: the first over capacity (u4) gets it, u5 still does not.
    await admin.disable_users(["u2"])
    assert (await wire.login("u4", "5.1.3")).msg.granted
    u5 = (await wire.login("u5", "5.1.3")).msg
    assert (u5.granted, u5.reason) == (False, pb.DENY_REASON_NOT_LICENSED)


async def test_refused_login_opens_no_session(
    server: RunningServer, admin: AdminClient, wire: Wire
) -> None:
    await admin.add_users(["alice"], enable=True)
    await admin.add_users(["bob"])

    for version in ("", "3.4.2", "4.2.0"):
        assert (await wire.login("alice", version)).msg.granted
    assert (await admin.status()).active_sessions == 0
    assert not (await wire.login("bob", "5.1.3")).msg.granted
    assert not (await wire.login("bob", "6.0.0")).msg.granted
    assert (await admin.status()).active_sessions == 0

    assert (await wire.login("alice", "5.1.3")).msg.session_id
    assert (await wire.login("alice", "6.0.0")).msg.session_id
    assert (await admin.status()).active_sessions == 2


async def test_each_login_gets_its_own_session(admin: AdminClient, wire: Wire) -> None:
    await admin.add_users(["alice"], enable=True)

    first = (await wire.login("alice", "5.1.3")).msg.session_id
    second = (await wire.login("alice", "5.1.3")).msg.session_id

    assert first != second
    await wire.logout(first)
    assert not (await wire.heartbeat(first)).msg.granted
    assert (await wire.heartbeat(second)).msg.granted


async def test_last_evaluation_day_message(
    server: RunningServer, admin: AdminClient, wire: Wire
) -> None:
    await admin.add_users(["alice"], enable=True)
    server.clock.advance(days=29, hours=1)

    reply = (await wire.login("alice", "3.4.2")).msg

    assert reply.granted
    assert reply.message == "Welcome, alice. OfficeStatus is being evaluated: 1 day left."


# --- GetLicenseStatus -----------------------------------------------------------------


async def test_license_status_as_4x_and_5x_ask_during_evaluation(
    admin: AdminClient, wire: Wire
) -> None:
    await admin.add_users(["alice", "bob"], enable=True)

    reply = await wire.license_status()  # 4.x and 5.x send no fields at all

    # seats_total is 0 during an evaluation, so proto3 does not send field 1.
    assert reply.fields == {2, 3, 4, 5}
    assert reply.fields <= STATUS_FIELDS[5]
    msg = reply.msg
    assert (msg.seats_used, msg.evaluation, msg.evaluation_days_left) == (2, True, 30)
    assert msg.major_version == 6


async def test_license_status_as_4x_and_5x_ask_after_purchase(
    server: RunningServer, admin: AdminClient, wire: Wire
) -> None:
    await admin.install_license(server.vendor.issue(25))
    await admin.install_license(server.vendor.issue(10))
    await admin.add_users(["alice", "bob", "carol"], enable=True)

    reply = await wire.license_status()

    assert reply.fields == {1, 2, 5}
    msg = reply.msg
    assert (msg.seats_total, msg.seats_used, msg.evaluation) == (35, 3, False)
    assert (msg.evaluation_days_left, msg.major_version) == (0, 6)


async def test_license_status_as_4x_and_5x_ask_when_over_capacity(
    server: RunningServer, admin: AdminClient, wire: Wire
) -> None:
    await over_capacity(server, admin)

    reply = await wire.license_status()

    assert reply.fields == {1, 2, 5}
    assert (reply.msg.seats_total, reply.msg.seats_used) == (3, 3)


async def test_license_status_after_the_evaluation_expired(
    server: RunningServer, admin: AdminClient, wire: Wire
) -> None:
    await admin.add_users(["alice"], enable=True)
    server.clock.advance(days=31)

    legacy = await wire.license_status()
    v6 = await wire.license_status("6.0.0")

    # Nothing but the major version: no seats, none used, no evaluation, no days left.
    assert legacy.fields == {5}
    assert v6.fields == {5}
    assert not v6.msg.unlimited


async def test_license_status_for_6x_is_unlimited_during_evaluation(
    server: RunningServer, admin: AdminClient, wire: Wire
) -> None:
    await admin.add_users(["alice"], enable=True)

    during = await wire.license_status("6.0.0")
    assert during.fields == {2, 3, 4, 5, 6}
    assert during.msg.unlimited
    assert (during.msg.evaluation, during.msg.evaluation_days_left) == (True, 30)

    await admin.install_license(server.vendor.issue(5))
    after = await wire.license_status("6.0.0")
    assert after.fields == {1, 2, 5}
    assert (after.msg.seats_total, after.msg.seats_used, after.msg.unlimited) == (5, 1, False)


@pytest.mark.parametrize(
    ("version", "fields"),
    [
        pytest.param("3.4.2", {2, 3, 4}, id="3.4.2-as-4x"),
        pytest.param("4.2.0", {2, 3, 4}, id="4.2.0"),
        pytest.param("5.1.3", {2, 3, 4, 5}, id="5.1.3"),
        pytest.param("6.0.0", {2, 3, 4, 5, 6}, id="6.0.0"),
    ],
)
async def test_license_status_shaped_by_the_version_asked(
    admin: AdminClient, wire: Wire, version: str, fields: set[int]
) -> None:
    await admin.add_users(["alice"], enable=True)

    reply = await wire.license_status(version)

    assert reply.fields == fields


async def test_license_status_with_the_typed_6x_client(server: RunningServer) -> None:
    async with SeatClient(server.address) as client:
        status = await client.license_status()

    assert status.evaluation
    assert status.unlimited
    assert (status.evaluation_days_left, status.major_version) == (30, 6)


async def test_license_status_refuses_a_too_old_version(wire: Wire) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await wire.license_status("2.0")

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(caught.value).reason == "CLIENT_TOO_OLD"


# --- sessions: Heartbeat and Logout (5.x and 6.x) -------------------------------------


async def _session(wire: Wire, user: str, version: str) -> str:
    reply = (await wire.login(user, version)).msg
    assert reply.granted, reply.message
    assert reply.heartbeat_interval_seconds == HEARTBEAT
    return reply.session_id


@pytest.mark.parametrize("version", ["5.1.3", "6.0.0"])
async def test_heartbeat_granted_while_enabled(
    server: RunningServer, admin: AdminClient, wire: Wire, version: str
) -> None:
    await admin.add_users(["alice"], enable=True)
    session = await _session(wire, "alice", version)

    for _ in range(10):  # five minutes, a heartbeat every interval
        server.clock.advance(seconds=HEARTBEAT)
        reply = await wire.heartbeat(session)
        assert reply.fields == {1}  # granted, nothing else
        assert reply.msg.granted


@pytest.mark.parametrize("version", ["5.1.3", "6.0.0"])
async def test_heartbeat_refused_once_the_admin_disables_the_user(
    server: RunningServer, admin: AdminClient, wire: Wire, version: str
) -> None:
    await admin.add_users(["alice", "bob"], enable=True)
    alice = await _session(wire, "alice", version)
    bob = await _session(wire, "bob", version)

    await admin.disable_users(["alice"])
    server.clock.advance(seconds=HEARTBEAT)
    refused = await wire.heartbeat(alice)

    assert refused.fields == {2, 3}
    assert not refused.msg.granted
    assert refused.msg.reason == pb.DENY_REASON_USER_DISABLED
    assert refused.msg.message == DISABLED.format(name="alice")
    # The client signs the user out; the session is over, even once re-enabled.
    await admin.enable_users(["alice"])
    after = (await wire.heartbeat(alice)).msg
    assert not after.granted
    assert after.reason == sent_reason(version, pb.DENY_REASON_SESSION_ENDED)
    assert after.message == SESSION_ENDED
    # Others are not affected.
    assert (await wire.heartbeat(bob)).msg.granted


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        pytest.param("5.1.3", pb.DENY_REASON_UNSPECIFIED, id="5.1.3"),
        pytest.param("6.0.0", pb.DENY_REASON_SESSION_ENDED, id="6.0.0"),
    ],
)
async def test_heartbeat_after_logout(
    admin: AdminClient, wire: Wire, version: str, reason: int
) -> None:
    await admin.add_users(["alice"], enable=True)
    session = await _session(wire, "alice", version)

    logout = await wire.logout(session)
    reply = await wire.heartbeat(session)

    assert logout.fields == set()
    assert not reply.msg.granted
    assert reply.msg.reason == reason
    assert reply.msg.reason <= (LEGACY_MAX_REASON if version.startswith("5") else 6)
    assert reply.msg.message == SESSION_ENDED
    # 5.x gets UNSPECIFIED, which proto3 leaves off the wire.
    assert reply.fields == ({3} if reason == pb.DENY_REASON_UNSPECIFIED else {2, 3})
    # Logging out twice, or a session that never was, is not an error.
    assert (await wire.logout(session)).fields == set()
    assert (await wire.logout("no such session")).fields == set()


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        pytest.param("5.1.3", pb.DENY_REASON_UNSPECIFIED, id="5.1.3"),
        pytest.param("6.0.0", pb.DENY_REASON_SESSION_ENDED, id="6.0.0"),
    ],
)
async def test_session_that_missed_three_heartbeats_is_refused(
    server: RunningServer, admin: AdminClient, wire: Wire, version: str, reason: int
) -> None:
    await admin.add_users(["alice"], enable=True)
    late_but_alive = await _session(wire, "alice", version)
    dead = await _session(wire, "alice", version)

    server.clock.advance(seconds=3 * HEARTBEAT)  # exactly three intervals: still alive
    assert (await wire.heartbeat(late_but_alive)).msg.granted
    server.clock.advance(seconds=3 * HEARTBEAT + 1)
    assert not (await wire.heartbeat(late_but_alive)).msg.granted

    reply = (await wire.heartbeat(dead)).msg
    assert not reply.granted
    assert reply.reason == reason
    assert reply.message == SESSION_ENDED
    # The user is not locked out: a new login gets a new session.
    assert (await wire.login("alice", version)).msg.granted


async def test_status_does_not_count_sessions_that_stopped_heartbeating(
    server: RunningServer, admin: AdminClient, wire: Wire
) -> None:
    await admin.add_users(["alice"], enable=True)
    await _session(wire, "alice", "5.1.3")
    assert (await admin.status()).active_sessions == 1

    server.clock.advance(hours=1)  # the client crashed: no heartbeat, no logout

    assert (await admin.status()).active_sessions == 0


def _tampered(session_id: str, *, user: str | None = None, run: str | None = None) -> str:
    """A real session id with its signed payload changed (and the old signature)."""
    prefix, body, mac = session_id.split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    release, old_run, nonce, old_user = payload.split("|", 3)
    raw = f"{release}|{run or old_run}|{nonce}|{user or old_user}".encode()
    return f"{prefix}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}.{mac}"


@pytest.mark.parametrize("version", ["5.1.3", "6.0.0"])
async def test_forged_session_ids_are_refused(
    server: RunningServer, admin: AdminClient, version: str
) -> None:
    await admin.add_users(["alice", "bob"], enable=True)
    async with grpc.aio.insecure_channel(server.address) as channel:
        real = await _session(Wire(server, channel), "alice", version)
    server.clock.advance(seconds=10)
    forged = [
        "",
        "s2.abc.def",
        "not-a-session",
        "x" * 5000,
        real + "x",
        real[:-2],
        _tampered(real, user="BOB"),
        # Claims to be from an earlier run, to be resumed.
        _tampered(real, run="0" * 16),
        real.replace("s2.", "s\u0662.", 1),
        real + "\u00e9",
    ]
    # Even after a restart, when genuine ids issued before it are resumed.
    await server.restart()

    async with grpc.aio.insecure_channel(server.address) as channel:
        wire = Wire(server, channel)
        for session_id in forged:
            reply = await wire.heartbeat(session_id)
            assert not reply.msg.granted, session_id
            # Not genuine: answered as the oldest release with sessions would be.
            assert reply.msg.reason == pb.DENY_REASON_UNSPECIFIED
            assert reply.msg.message == SESSION_ENDED
        assert (await wire.heartbeat(real)).msg.granted


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        pytest.param("5.1.3", pb.DENY_REASON_NOT_LICENSED, id="5.1.3"),
        pytest.param("6.0.0", pb.DENY_REASON_OVER_CAPACITY, id="6.0.0"),
    ],
)
async def test_heartbeat_over_capacity_after_a_forced_removal(
    server: RunningServer, admin: AdminClient, wire: Wire, version: str, reason: int
) -> None:
    await admin.install_license(server.vendor.issue(3))
    two, _ = await admin.install_license(server.vendor.issue(2))
    await admin.add_users(["u1", "u2", "u3", "u4", "u5"], enable=True)
    first = await _session(wire, "u1", version)
    last = await _session(wire, "u5", version)

    await admin.remove_license(two.license_id, force=True)
    refused = await wire.heartbeat(last)

    assert refused.fields == {2, 3}
    assert (refused.msg.granted, refused.msg.reason) == (False, reason)
    assert refused.msg.message == OVER_CAPACITY
    assert (await wire.heartbeat(first)).msg.granted


@pytest.mark.parametrize("version", ["5.1.3", "6.0.0"])
async def test_heartbeat_refused_when_the_evaluation_runs_out(
    server: RunningServer, admin: AdminClient, wire: Wire, version: str
) -> None:
    await admin.add_users(["alice"], enable=True)
    server.clock.advance(days=30, seconds=-HEARTBEAT)  # one interval before the end
    session = await _session(wire, "alice", version)

    server.clock.advance(seconds=HEARTBEAT)
    reply = await wire.heartbeat(session)

    assert reply.fields == {2, 3}
    assert reply.msg.reason == pb.DENY_REASON_EVALUATION_EXPIRED
    assert reply.msg.message == EVALUATION_EXPIRED


async def test_typed_6x_client_session_round_trip(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["alice"], enable=True)

    async with SeatClient(server.address) as client:
        login = await client.login("alice", machine_name="PC-042")
        server.clock.advance(seconds=HEARTBEAT)
        alive = await client.heartbeat(login.session_id)
        await client.logout(login.session_id)
        ended = await client.heartbeat(login.session_id)

    assert login.granted
    assert login.heartbeat_interval_seconds == HEARTBEAT
    assert (alive.granted, alive.reason, alive.message) == (True, DenyReason.UNSPECIFIED, "")
    assert (ended.granted, ended.reason) == (False, DenyReason.SESSION_ENDED)
    assert ended.message == SESSION_ENDED


# --- 3.x: never signed out ------------------------------------------------------------


@pytest.mark.parametrize("version", ["", "3.4.2", "4.2.0"])
async def test_pre_5x_clients_get_no_session_and_are_never_signed_out(
    server: RunningServer, admin: AdminClient, wire: Wire, version: str
) -> None:
    await admin.add_users(["alice"], enable=True)
    first = await wire.login("alice", version)
    assert first.fields == {1, 2}
    assert (first.msg.session_id, first.msg.heartbeat_interval_seconds) == ("", 0)

    await admin.install_license(server.vendor.issue(25))
    for days in (1, 30, 365, 3 * 365):  # no heartbeats ever; purchased never expires
        server.clock.advance(days=days)
        later = await wire.login("alice", version)
        assert later.fields == {1, 2}
        assert later.msg.message == WELCOME.format(name="alice")
    assert (await admin.status()).active_sessions == 0


# --- a restart does not sign 5.x and 6.x clients out ----------------------------------


@pytest.mark.parametrize("version", ["5.1.3", "6.0.0"])
async def test_session_survives_a_server_restart(
    server: RunningServer, admin: AdminClient, version: str
) -> None:
    await admin.add_users(["alice", "bob"], enable=True)
    async with grpc.aio.insecure_channel(server.address) as channel:
        alice = await _session(Wire(server, channel), "alice", version)
        bob = await _session(Wire(server, channel), "bob", version)
    await admin.disable_users(["bob"])

    server.clock.advance(seconds=HEARTBEAT)  # a restart takes a moment
    await server.restart()

    async with grpc.aio.insecure_channel(server.address) as channel:
        wire = Wire(server, channel)
        resumed = await wire.heartbeat(alice)
        assert resumed.fields == {1}
        assert resumed.msg.granted
        server.clock.advance(seconds=HEARTBEAT)
        assert (await wire.heartbeat(alice)).msg.granted
        assert (await admin_status(server)).active_sessions == 1
        # A user disabled meanwhile is refused, with the reason every release knows.
        refused = await wire.heartbeat(bob)
        assert refused.fields == {2, 3}
        assert refused.msg.reason == pb.DENY_REASON_USER_DISABLED
        assert refused.msg.message == DISABLED.format(name="bob")


async def admin_status(server: RunningServer) -> Status:
    async with AdminClient(server.address, server.token) as admin:
        return await admin.status()


async def _session_from_before_a_restart(
    server: RunningServer, admin: AdminClient, version: str
) -> str:
    await admin.add_users(["alice"], enable=True)
    async with grpc.aio.insecure_channel(server.address) as channel:
        session = await _session(Wire(server, channel), "alice", version)
    server.clock.advance(seconds=HEARTBEAT)
    await server.restart()
    return session


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        pytest.param("5.1.3", pb.DENY_REASON_UNSPECIFIED, id="5.1.3"),
        pytest.param("6.0.0", pb.DENY_REASON_SESSION_ENDED, id="6.0.0"),
    ],
)
async def test_resumed_session_ends_at_logout(
    server: RunningServer, admin: AdminClient, version: str, reason: int
) -> None:
    session = await _session_from_before_a_restart(server, admin, version)

    async with grpc.aio.insecure_channel(server.address) as channel:
        wire = Wire(server, channel)
        assert (await wire.heartbeat(session)).msg.granted
        await wire.logout(session)
        ended = (await wire.heartbeat(session)).msg

    assert (ended.granted, ended.reason, ended.message) == (False, reason, SESSION_ENDED)


async def test_resumed_session_ends_when_it_misses_its_heartbeats(
    server: RunningServer, admin: AdminClient
) -> None:
    session = await _session_from_before_a_restart(server, admin, "6.0.0")

    async with grpc.aio.insecure_channel(server.address) as channel:
        wire = Wire(server, channel)
        assert (await wire.heartbeat(session)).msg.granted
        server.clock.advance(seconds=3 * HEARTBEAT + 1)
        first = (await wire.heartbeat(session)).msg
        second = (await wire.heartbeat(session)).msg

    assert (first.granted, first.reason) == (False, pb.DENY_REASON_SESSION_ENDED)
    assert (second.granted, second.reason) == (False, pb.DENY_REASON_SESSION_ENDED)


@pytest.mark.parametrize("version", ["5.1.3", "6.0.0"])
async def test_logout_right_after_a_restart_ends_the_session(
    server: RunningServer, admin: AdminClient, version: str
) -> None:
    session = await _session_from_before_a_restart(server, admin, version)

    async with grpc.aio.insecure_channel(server.address) as channel:
        wire = Wire(server, channel)
        await wire.logout(session)  # the user quits before the next heartbeat is due
        ended = (await wire.heartbeat(session)).msg

    assert not ended.granted
    assert ended.reason == sent_reason(version, pb.DENY_REASON_SESSION_ENDED)
    assert ended.message == SESSION_ENDED


async def test_session_survives_a_restart_when_the_clock_stepped_back(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["alice"], enable=True)
    async with grpc.aio.insecure_channel(server.address) as channel:
        session = await _session(Wire(server, channel), "alice", "5.1.3")

    server.clock.advance(seconds=-HEARTBEAT)  # the clock was fast; corrected at reboot
    await server.restart()

    async with grpc.aio.insecure_channel(server.address) as channel:
        assert (await Wire(server, channel).heartbeat(session)).msg.granted


# --- Handshake (6.x) ------------------------------------------------------------------

ALL_CAPABILITIES = ["license-info", "sessions", "over-capacity-reason"]


async def test_handshake(wire: Wire) -> None:
    reply = (await wire.handshake("6.0.0")).msg

    assert reply.server_version == "6.0.0"
    assert reply.minimum_client_version == "3.0.0"
    assert list(reply.capabilities) == ALL_CAPABILITIES
    assert reply.major_version == 6


@pytest.mark.parametrize(
    ("asked", "enabled"),
    [
        pytest.param(("sessions",), ["sessions"], id="one"),
        pytest.param(
            ("over-capacity-reason", "license-info"),
            ["license-info", "over-capacity-reason"],
            id="two",
        ),
        pytest.param(("license-info", "teleport"), ["license-info"], id="one-unknown"),
        pytest.param(("teleport",), [], id="only-unknown"),
        pytest.param(tuple(ALL_CAPABILITIES), ALL_CAPABILITIES, id="all"),
    ],
)
async def test_handshake_returns_the_subset_asked_for(
    server: RunningServer, asked: tuple[str, ...], enabled: list[str]
) -> None:
    async with SeatClient(server.address) as client:
        handshake = await client.handshake(asked)

    assert list(handshake.capabilities) == enabled
    assert (handshake.server_version, handshake.major_version) == ("6.0.0", 6)


async def test_handshake_with_no_version_is_served_as_3x(wire: Wire) -> None:
    reply = await wire.handshake("", ("license-info",))

    # 3.x never handshakes; such a caller is told the versions, and no 6.x capability.
    assert reply.fields == {1, 2, 4}
    assert (reply.msg.server_version, reply.msg.minimum_client_version) == ("6.0.0", "3.0.0")


async def test_handshake_from_a_newer_client_is_served_as_6x(wire: Wire) -> None:
    reply = (await wire.handshake("7.1.0")).msg

    assert list(reply.capabilities) == ALL_CAPABILITIES


REFUSED_VERSIONS = [
    pytest.param("2.9.9", "CLIENT_TOO_OLD", id="2.9.9"),
    pytest.param("1.0", "CLIENT_TOO_OLD", id="1.0"),
    pytest.param("2.0", "CLIENT_TOO_OLD", id="2.0"),
    pytest.param("abc", "CLIENT_VERSION_INVALID", id="abc"),
    pytest.param("3.x", "CLIENT_VERSION_INVALID", id="3.x"),
    pytest.param("\u0666.\u0660", "CLIENT_VERSION_INVALID", id="arabic-indic-digits"),
]


@pytest.mark.parametrize(("version", "reason"), REFUSED_VERSIONS)
async def test_handshake_refuses_unsupported_versions(
    server: RunningServer, wire: Wire, version: str, reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await wire.handshake(version)
    err = caught.value
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(err)
    assert (info.reason, info.domain) == (reason, "officestatus.licensing")
    assert "Update" in (err.details() or "")
    assert "3.0 or later" in (err.details() or "")

    async with SeatClient(server.address, client_version=version) as client:
        with pytest.raises(PreconditionFailedError) as typed:
            await client.handshake()
    assert typed.value.reason == reason
    assert typed.value.message == err.details()


@pytest.mark.parametrize(("version", "reason"), REFUSED_VERSIONS)
async def test_login_refuses_unsupported_versions(
    server: RunningServer, admin: AdminClient, wire: Wire, version: str, reason: str
) -> None:
    await admin.add_users(["alice"], enable=True)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await wire.login("alice", version)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(caught.value).reason == reason

    async with SeatClient(server.address, client_version=version) as client:
        with pytest.raises(PreconditionFailedError) as typed:
            await client.login("alice")
    assert typed.value.reason == reason
    assert "Update" in typed.value.message
    assert (await admin.status()).active_sessions == 0


async def test_too_old_message_tells_the_user_to_update(server: RunningServer) -> None:
    async with SeatClient(server.address, client_version="2.0") as client:
        with pytest.raises(PreconditionFailedError) as caught:
            await client.login("alice")

    assert caught.value.message == (
        "OfficeStatus client 2.0.0 is too old for this license server 6.0.0. Update the "
        "client to 3.0 or later."
    )


# --- user names -----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("typed", ["  ALICE ", "alice", "Alice", "aLiCe\t", "\u00a0ALICE"])
async def test_user_names_are_case_insensitive_and_trimmed(
    admin: AdminClient, wire: Wire, version: str, typed: str
) -> None:
    await admin.add_users(["Alice"], enable=True)

    reply = await wire.login(typed, version)

    assert_login_shape(reply, version)
    assert reply.msg.granted
    assert reply.msg.message == WELCOME_EVALUATION.format(name="Alice", days=30)


async def test_session_of_a_trimmed_name_is_the_users(
    server: RunningServer, admin: AdminClient, wire: Wire
) -> None:
    await admin.add_users(["Alice"], enable=True)
    session = await _session(wire, "  ALICE ", "5.1.3")

    await admin.disable_users(["alice"])

    reply = (await wire.heartbeat(session)).msg
    assert (reply.granted, reply.reason) == (False, pb.DENY_REASON_USER_DISABLED)
    assert reply.message == DISABLED.format(name="Alice")


BAD_NAMES = [
    pytest.param("", EMPTY_NAME, id="empty"),
    pytest.param("   \t ", EMPTY_NAME, id="blank"),
    pytest.param("al\x00ice", None, id="nul"),
    pytest.param("al\nice", None, id="newline-inside"),
    pytest.param("ali\x1bce", None, id="escape"),
    pytest.param("al\u200bice", None, id="zero-width-space"),
    pytest.param("al\u2028ice", None, id="line-separator"),
    pytest.param(
        "a" * 257,
        "A user name can have at most 256 characters; this one has 257. Sign in with your "
        "user name.",
        id="too-long",
    ),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
async def test_names_that_are_no_names_are_refused(
    admin: AdminClient, wire: Wire, version: str, name: str, message: str | None
) -> None:
    await admin.add_users(["alice"], enable=True)

    reply = await wire.login(name, version)

    assert_login_shape(reply, version)
    assert not reply.msg.granted
    assert reply.msg.reason == (sent_reason(version, pb.DENY_REASON_USER_UNKNOWN) or 0)
    if message is not None:
        assert reply.msg.message == message
    else:
        assert reply.msg.message.startswith("The user name ")
        assert reply.msg.message.endswith("Sign in with your user name.")
    # The server is still up, and still answers everyone else.
    assert (await wire.login("alice", version)).msg.granted


async def test_a_name_that_is_not_utf8_leaves_the_server_up(admin: AdminClient, wire: Wire) -> None:
    await admin.add_users(["alice"], enable=True)
    # LoginRequest{user_name: b"\xff\xfe", client_version: "4.2.0"}, not valid UTF-8.
    raw = b"\x0a\x02\xff\xfe\x12\x054.2.0"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await wire.raw("Login")(raw, timeout=TIMEOUT)

    # grpc refuses the request before the handler: an error, no reply a client could show.
    assert caught.value.code() in {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INVALID_ARGUMENT}
    assert (await wire.login("alice", "4.2.0")).msg.granted


# --- no release below 6 ever gets a reason it does not define -------------------------


@pytest.mark.parametrize("version", LEGACY_VERSIONS)
async def test_no_legacy_release_ever_gets_a_6x_reason(
    server: RunningServer, admin: AdminClient, wire: Wire, version: str
) -> None:
    """Every refusal the server can give, in one state, logins and heartbeats alike."""
    release = release_of(version)
    await admin.install_license(server.vendor.issue(2))
    spare, _ = await admin.install_license(server.vendor.issue(2))
    await admin.add_users(["a1", "a2", "a3", "a4"], enable=True)
    await admin.add_users(["off"])
    sessions = []
    if release >= 5:
        sessions = [await _session(wire, user, version) for user in ("a1", "a3", "a4")]
    await admin.remove_license(spare.license_id, force=True)  # a3, a4 over capacity

    replies: list[Reply[pb.LoginReply]] = []
    for user in ("a1", "a2", "a3", "a4", "off", "nobody", "", "x\x00y"):
        replies.append(await wire.login(user, version))
    for reply in replies:
        assert_login_shape(reply, version)
    assert [r.msg.granted for r in replies] == [True, True] + [False] * 6
    if release < 4:
        assert all(3 not in r.fields for r in replies)
    else:
        assert [r.msg.reason for r in replies[2:]] == [3, 3, 2, 1, 1, 1]

    if release >= 5:
        beats = [await wire.heartbeat(s) for s in sessions]  # a1 alive; a3, a4 over
        await wire.logout(sessions[0])
        beats.append(await wire.heartbeat(sessions[0]))  # logged out
        beats.append(await wire.heartbeat(sessions[1]))  # refused before: ended
        server.clock.advance(seconds=10 * HEARTBEAT)
        beats.append(await wire.heartbeat(sessions[2]))  # ended, and missed heartbeats
        assert [b.msg.granted for b in beats] == [True, False, False, False, False, False]
        assert [b.msg.reason for b in beats] == [0, 3, 3, 0, 0, 0]
        assert all(b.msg.reason <= LEGACY_MAX_REASON for b in beats)
