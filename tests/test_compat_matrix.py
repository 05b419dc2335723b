"""Every deployed client release against a live 6.x server, read with ITS OWN schema.

tests/test_client_protocol.py reads every reply with the living 6.x stubs; here each
release's replies are parsed by the schema it was released with (proto/frozen/vN,
compiled into a descriptor pool of its own by tests/legacy.py), as the deployed client
parses them. Every test runs against one real server (real SQLite file, FakeClock).

The matrix is release x case: 3.x, 4.x, 5.x and 6.x x granted, unknown user, disabled
user, not licensed, evaluation expired, over capacity. For each: granted, message and
reason as that release reads them; nothing on the wire the release does not define; no
DenyReason value its own enum does not define (looked up in its pool, not hard-coded).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from officestatus_client import AdminClient
from tests.legacy import (
    LEGACY_RELEASES,
    MAJOR,
    RELEASES,
    SHARED_REPLIES,
    LegacyClient,
    Reply,
    Schema,
    schema,
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

HEARTBEAT = 30  # the `server` fixture's heartbeat interval, in seconds
MACHINE = "OFFICE-PC-07"


def release_id(release: str) -> str:
    return f"{MAJOR[release]}.x"


def releases_with(rpc: str) -> list[str]:
    return [r for r in RELEASES if rpc in schema(r).rpcs]


def params(releases: list[str] | tuple[str, ...]) -> list[object]:
    return [pytest.param(r, id=release_id(r)) for r in releases]


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as chan:
        yield chan


# --- the schemas themselves -----------------------------------------------------------

# /work/shared/legacy-clients.md, table by table.
CONTRACT: dict[str, dict[str, Any]] = {
    "v3": {
        "rpcs": ["Login"],
        "LoginRequest": {1: "user_name", 2: "client_version"},
        "LoginReply": {1: "granted", 2: "message"},
        "DenyReason": None,
    },
    "v4": {
        "rpcs": ["Login", "GetLicenseStatus"],
        "LoginRequest": {1: "user_name", 2: "client_version", 3: "machine_name"},
        "LoginReply": {1: "granted", 2: "message", 3: "reason"},
        "LicenseStatusReply": {
            1: "seats_total",
            2: "seats_used",
            3: "evaluation",
            4: "evaluation_days_left",
        },
        "DenyReason": range(5),
    },
    "v5": {
        "rpcs": ["Login", "GetLicenseStatus", "Heartbeat", "Logout"],
        "LoginRequest": {1: "user_name", 2: "client_version", 3: "machine_name"},
        "LoginReply": {
            1: "granted",
            2: "message",
            3: "reason",
            4: "session_id",
            5: "heartbeat_interval_seconds",
        },
        "LicenseStatusReply": {
            1: "seats_total",
            2: "seats_used",
            3: "evaluation",
            4: "evaluation_days_left",
            5: "major_version",
        },
        "HeartbeatRequest": {1: "session_id"},
        "HeartbeatReply": {1: "granted", 2: "reason", 3: "message"},
        "LogoutRequest": {1: "session_id"},
        "LogoutReply": {},
        "DenyReason": range(5),
    },
}


@pytest.mark.parametrize("release", params(LEGACY_RELEASES))
def test_frozen_schema_is_the_documented_contract(release: str) -> None:
    s = schema(release)
    contract = CONTRACT[release]

    assert list(s.rpcs) == contract["rpcs"]
    for name, fields in contract.items():
        if name == "rpcs":
            continue
        if name == "DenyReason":
            if fields is None:
                assert not s.has_enum("DenyReason")
            else:
                assert s.enum_numbers("DenyReason") == set(fields)
            continue
        assert {f.number: f.name for f in s.descriptor(name).fields} == fields, name


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        pytest.param(a, b, id=f"{release_id(a)}-in-{release_id(b)}")
        for a, b in itertools.pairwise(RELEASES)
    ],
)
def test_each_release_only_adds_to_the_one_before(older: str, newer: str) -> None:
    """Nothing renumbered, renamed, retyped or removed, release to release (the living
    schema included), so each release's bytes mean the same to every later one."""
    old, new = schema(older), schema(newer)
    old_file = old.pool.FindFileByName("officestatus/licensing/seat_service.proto")
    new_file = new.pool.FindFileByName("officestatus/licensing/seat_service.proto")

    for name, rpc in old.rpcs.items():
        later = new.rpcs[name]
        assert (later.input_type.full_name, later.output_type.full_name) == (
            rpc.input_type.full_name,
            rpc.output_type.full_name,
        )
    for name, message in old_file.message_types_by_name.items():
        later_message = new_file.message_types_by_name[name]
        for field in message.fields:
            same = later_message.fields_by_number[field.number]
            assert (same.name, same.type, same.is_repeated) == (
                field.name,
                field.type,
                field.is_repeated,
            ), f"{name}.{field.name}"
    for name, enum in old_file.enum_types_by_name.items():
        later_enum = new_file.enum_types_by_name[name]
        for value in enum.values:
            assert later_enum.values_by_number[value.number].name == value.name


@pytest.mark.parametrize("release", params(RELEASES))
async def test_legacy_client_has_exactly_its_release_rpcs(
    channel: grpc.aio.Channel, release: str
) -> None:
    client = LegacyClient(release, channel)
    all_rpcs = set(schema("current").rpcs)

    for rpc in all_rpcs:
        assert hasattr(client, rpc) == (rpc in schema(release).rpcs), rpc
    if release == "v3":
        with pytest.raises(AttributeError, match="no RPC 'GetLicenseStatus'"):
            _ = client.GetLicenseStatus
        with pytest.raises(ValueError, match="machine_name"):
            await client.Login(user_name="alice", machine_name=MACHINE)


# --- the cases ------------------------------------------------------------------------


UNSPECIFIED = "DENY_REASON_UNSPECIFIED"


Setup = Callable[[RunningServer, AdminClient], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    """A server state and the user who logs in, with what 6.x is told."""

    setup: Setup
    user: str
    reason: str  # the DenyReason name, as 6.x gets it; UNSPECIFIED when granted
    message: str
    # Sent instead of `reason` to a release whose enum does not define it.
    stand_in: str = UNSPECIFIED

    @property
    def granted(self) -> bool:
        return self.reason == UNSPECIFIED


async def _granted(server: RunningServer, admin: AdminClient) -> None:
    await admin.install_license(server.vendor.issue(25))
    await admin.add_users(["alice", "bob"], enable=True)


async def _granted_in_evaluation(server: RunningServer, admin: AdminClient) -> None:
    await admin.add_users(["alice"], enable=True)


async def _unknown_user(server: RunningServer, admin: AdminClient) -> None:
    await admin.install_license(server.vendor.issue(25))
    await admin.add_users(["alice"], enable=True)


async def _disabled_user(server: RunningServer, admin: AdminClient) -> None:
    await admin.install_license(server.vendor.issue(25))
    await admin.add_users(["alice"])


async def _not_licensed(server: RunningServer, admin: AdminClient) -> None:
    await admin.add_users(["alice"], enable=True)
    lic, _ = await admin.install_license(server.vendor.issue(25))
    _, status = await admin.remove_license(lic.license_id, force=True)
    assert (status.seats_total, status.evaluation, status.evaluation_expired) == (0, False, False)


async def _evaluation_expired(server: RunningServer, admin: AdminClient) -> None:
    await admin.add_users(["alice"], enable=True)
    server.clock.advance(days=31)


async def _over_capacity(server: RunningServer, admin: AdminClient) -> None:
    await admin.install_license(server.vendor.issue(3))
    two, _ = await admin.install_license(server.vendor.issue(2))
    await admin.add_users(["u1", "u2", "u3", "u4", "u5"], enable=True)
    _, status = await admin.remove_license(two.license_id, force=True)
    assert status.over_capacity == ("u4", "u5")


CASES = {
    "granted": Case(_granted, "alice", UNSPECIFIED, WELCOME.format(name="alice")),
    "granted-evaluation": Case(
        _granted_in_evaluation,
        "alice",
        UNSPECIFIED,
        WELCOME_EVALUATION.format(name="alice", days=30),
    ),
    "unknown-user": Case(
        _unknown_user, "mallory", "DENY_REASON_USER_UNKNOWN", UNKNOWN.format(name="mallory")
    ),
    "disabled-user": Case(
        _disabled_user, "alice", "DENY_REASON_USER_DISABLED", DISABLED.format(name="alice")
    ),
    "not-licensed": Case(_not_licensed, "alice", "DENY_REASON_NOT_LICENSED", NOT_LICENSED),
    "evaluation-expired": Case(
        _evaluation_expired, "alice", "DENY_REASON_EVALUATION_EXPIRED", EVALUATION_EXPIRED
    ),
    # A release that does not know OVER_CAPACITY shows its "not licensed" dialog.
    "over-capacity-last-enabled": Case(
        _over_capacity,
        "u5",
        "DENY_REASON_OVER_CAPACITY",
        OVER_CAPACITY,
        stand_in="DENY_REASON_NOT_LICENSED",
    ),
    "over-capacity-first-enabled": Case(
        _over_capacity, "u1", UNSPECIFIED, WELCOME.format(name="u1")
    ),
}


def sent_reason(s: Schema, reason: str, stand_in: str) -> int:
    """The DenyReason number `s`'s release must be sent for `reason`: its own value when its
    enum defines it, else the stand-in, from the release's own enum."""
    number = s.enum_value("DenyReason", reason)
    if number is None:
        number = s.enum_value("DenyReason", stand_in)
    assert number is not None, (s.release, reason, stand_in)
    return number


def assert_sensible(message: str) -> None:
    """A message a person reads as is: one line of text, a full sentence."""
    assert message.strip() == message
    assert message
    assert message.isprintable(), repr(message)
    assert message.endswith("."), message
    assert len(message) < 200


def assert_release_reads(reply: Reply, s: Schema) -> None:
    """Only what the release defines is on the wire; any reason is one its enum has."""
    assert reply.release == s.release
    assert reply.unknown == [], (s.release, reply.rpc, reply.raw)
    assert reply.fields <= s.field_numbers(reply.msg.DESCRIPTOR.name)
    if "reason" in reply.msg.DESCRIPTOR.fields_by_name:
        assert reply.msg.reason in s.enum_numbers("DenyReason")


def login_request(s: Schema, user: str) -> dict[str, str]:
    """What the release's client sends at start-up: all the LoginRequest fields it has."""
    fields = {"user_name": user, "client_version": s.client_version}
    if "machine_name" in s.descriptor("LoginRequest").fields_by_name:
        fields["machine_name"] = MACHINE
    return fields


MATRIX = [
    pytest.param(release, case, id=f"{release_id(release)}-{case}")
    for release, case in itertools.product(RELEASES, CASES)
]


@pytest.mark.parametrize(("release", "case_id"), MATRIX)
async def test_login(
    server: RunningServer,
    admin: AdminClient,
    channel: grpc.aio.Channel,
    release: str,
    case_id: str,
) -> None:
    case = CASES[case_id]
    s = schema(release)
    await case.setup(server, admin)

    reply = await LegacyClient(release, channel).Login(**login_request(s, case.user))

    msg = reply.msg
    assert_release_reads(reply, s)
    assert msg.granted is case.granted
    assert msg.message == case.message
    assert_sensible(msg.message)
    login_reply = s.descriptor("LoginReply")
    if "reason" in login_reply.fields_by_name:
        assert msg.reason == sent_reason(s, case.reason, case.stand_in)
    else:  # 3.x: the message is all it shows
        assert 3 not in reply.fields
    if "session_id" in login_reply.fields_by_name:
        assert bool(msg.session_id) is case.granted
        expected = HEARTBEAT if case.granted else 0
        assert msg.heartbeat_interval_seconds == expected
    else:
        assert (await admin.status()).active_sessions == 0
    if "license" in login_reply.fields_by_name:  # 6.x
        assert msg.HasField("license")
        assert msg.license.major_version == 6


# --- GetLicenseStatus (4.x and later) -------------------------------------------------


async def _status_licensed(server: RunningServer, admin: AdminClient) -> dict[str, object]:
    await admin.install_license(server.vendor.issue(25))
    await admin.add_users(["alice", "bob"], enable=True)
    return {"seats_total": 25, "seats_used": 2, "evaluation": False, "evaluation_days_left": 0}


async def _status_evaluation(server: RunningServer, admin: AdminClient) -> dict[str, object]:
    await admin.add_users(["alice"], enable=True)
    server.clock.advance(days=10)
    return {"seats_total": 0, "seats_used": 1, "evaluation": True, "evaluation_days_left": 20}


async def _status_over_capacity(server: RunningServer, admin: AdminClient) -> dict[str, object]:
    await _over_capacity(server, admin)
    return {"seats_total": 3, "seats_used": 3, "evaluation": False, "evaluation_days_left": 0}


async def _status_evaluation_expired(
    server: RunningServer, admin: AdminClient
) -> dict[str, object]:
    await _evaluation_expired(server, admin)
    return {"seats_total": 0, "seats_used": 0, "evaluation": False, "evaluation_days_left": 0}


STATUS_STATES = {
    "licensed": _status_licensed,
    "evaluation": _status_evaluation,
    "over-capacity": _status_over_capacity,
    "evaluation-expired": _status_evaluation_expired,
}


@pytest.mark.parametrize(
    ("release", "state"),
    [
        pytest.param(r, state, id=f"{release_id(r)}-{state}")
        for r, state in itertools.product(releases_with("GetLicenseStatus"), STATUS_STATES)
    ],
)
async def test_license_status(
    server: RunningServer,
    admin: AdminClient,
    channel: grpc.aio.Channel,
    release: str,
    state: str,
) -> None:
    s = schema(release)
    expected = await STATUS_STATES[state](server, admin)
    # 4.x and 5.x send an empty request; a 6.x client names its version.
    request_type = s.descriptor("LicenseStatusRequest")
    fields = {"client_version": s.client_version} if request_type.fields else {}

    reply = await LegacyClient(release, channel).GetLicenseStatus(**fields)

    msg = reply.msg
    got = {name: getattr(msg, name) for name in expected}
    assert got == expected
    reply_fields = s.field_numbers("LicenseStatusReply")
    if "major_version" in s.descriptor("LicenseStatusReply").fields_by_name:
        assert msg.major_version == 6
    if "unlimited" in s.descriptor("LicenseStatusReply").fields_by_name:
        assert msg.unlimited is expected["evaluation"]

    shared = SHARED_REPLIES.get((release, "GetLicenseStatus"))
    if shared is None:
        assert_release_reads(reply, s)
    else:
        # 4.x asks with the very bytes 5.x does, so it reads the 5.x reply: only 5.x's
        # additions are extra (4.x skips them), all it defines reads the same.
        extra = schema(shared).field_numbers("LicenseStatusReply") - reply_fields
        assert {int(u) for u in reply.unknown} == extra  # {5}: major_version, always 6
        assert reply.fields <= schema(shared).field_numbers("LicenseStatusReply")
        assert reply.known_bytes == s.message("LicenseStatusReply", **expected).SerializeToString()


# --- sessions: Heartbeat and Logout (5.x and later) -----------------------------------


async def _login_session(client: LegacyClient, user: str) -> str:
    reply = await client.Login(**login_request(client.schema, user))
    assert reply.msg.granted, reply.msg.message
    assert reply.msg.heartbeat_interval_seconds == HEARTBEAT
    session_id: str = reply.msg.session_id
    assert session_id
    return session_id


async def _disable(server: RunningServer, admin: AdminClient, client: LegacyClient, s: str) -> None:
    await admin.disable_users(["alice"])
    server.clock.advance(seconds=HEARTBEAT)


async def _remove_seats(
    server: RunningServer, admin: AdminClient, client: LegacyClient, s: str
) -> None:
    removable = (await admin.list_licenses())[-1]
    await admin.remove_license(removable.license_id, force=True)


async def _evaluation_runs_out(
    server: RunningServer, admin: AdminClient, client: LegacyClient, s: str
) -> None:
    server.clock.advance(seconds=HEARTBEAT)


async def _log_out(server: RunningServer, admin: AdminClient, client: LegacyClient, s: str) -> None:
    reply = await client.Logout(session_id=s)
    assert reply.raw == b""
    assert_release_reads(reply, client.schema)


async def _miss_heartbeats(
    server: RunningServer, admin: AdminClient, client: LegacyClient, s: str
) -> None:
    server.clock.advance(seconds=3 * HEARTBEAT + 1)


Change = Callable[[RunningServer, AdminClient, LegacyClient, str], Awaitable[None]]


@dataclass(frozen=True)
class Refusal:
    """A live session, then a change: the next heartbeat is refused."""

    before: Setup
    user: str
    change: Change
    reason: str
    message: str
    stand_in: str = UNSPECIFIED


async def _seats_for_alice_last(server: RunningServer, admin: AdminClient) -> None:
    await admin.install_license(server.vendor.issue(2))
    await admin.install_license(server.vendor.issue(1))
    await admin.add_users(["u1", "u2", "alice"], enable=True)


async def _evaluation_almost_over(server: RunningServer, admin: AdminClient) -> None:
    await admin.add_users(["alice"], enable=True)
    server.clock.advance(days=30, seconds=-HEARTBEAT)


REFUSALS = {
    "user-disabled": Refusal(
        _granted, "alice", _disable, "DENY_REASON_USER_DISABLED", DISABLED.format(name="alice")
    ),
    "over-capacity": Refusal(
        _seats_for_alice_last,
        "alice",
        _remove_seats,
        "DENY_REASON_OVER_CAPACITY",
        "All 2 OfficeStatus seats are held by users enabled before you. Ask your "
        "administrator to disable a user or install more seats.",
        stand_in="DENY_REASON_NOT_LICENSED",
    ),
    "evaluation-ends": Refusal(
        _evaluation_almost_over,
        "alice",
        _evaluation_runs_out,
        "DENY_REASON_EVALUATION_EXPIRED",
        EVALUATION_EXPIRED,
    ),
    "logged-out": Refusal(_granted, "alice", _log_out, "DENY_REASON_SESSION_ENDED", SESSION_ENDED),
    "missed-heartbeats": Refusal(
        _granted, "alice", _miss_heartbeats, "DENY_REASON_SESSION_ENDED", SESSION_ENDED
    ),
}


@pytest.mark.parametrize(
    ("release", "refusal_id"),
    [
        pytest.param(r, refusal, id=f"{release_id(r)}-{refusal}")
        for r, refusal in itertools.product(releases_with("Heartbeat"), REFUSALS)
    ],
)
async def test_heartbeat_refused(
    server: RunningServer,
    admin: AdminClient,
    channel: grpc.aio.Channel,
    release: str,
    refusal_id: str,
) -> None:
    refusal = REFUSALS[refusal_id]
    s = schema(release)
    client = LegacyClient(release, channel)
    await refusal.before(server, admin)
    session = await _login_session(client, refusal.user)
    alive = await client.Heartbeat(session_id=session)
    assert alive.msg.granted
    assert alive.fields == {1}
    assert_release_reads(alive, s)

    await refusal.change(server, admin, client, session)
    refused = await client.Heartbeat(session_id=session)
    # The client shows the message and signs the user out; the session is over for good.
    again = await client.Heartbeat(session_id=session)

    assert_release_reads(refused, s)
    msg = refused.msg
    assert msg.granted is False
    assert msg.message == refusal.message
    assert_sensible(msg.message)
    assert msg.reason == sent_reason(s, refusal.reason, refusal.stand_in)
    assert_release_reads(again, s)
    assert again.msg.granted is False
    assert again.msg.message == SESSION_ENDED
    ended = sent_reason(s, "DENY_REASON_SESSION_ENDED", UNSPECIFIED)
    assert again.msg.reason == ended
    assert (await admin.status()).active_sessions == 0


@pytest.mark.parametrize("release", params(releases_with("Logout")))
async def test_logout_ends_only_its_own_session(
    server: RunningServer,
    admin: AdminClient,
    channel: grpc.aio.Channel,
    release: str,
) -> None:
    await _granted(server, admin)
    client = LegacyClient(release, channel)
    alice = await _login_session(client, "alice")
    bob = await _login_session(client, "bob")
    assert (await admin.status()).active_sessions == 2

    logout = await client.Logout(session_id=alice)
    twice = await client.Logout(session_id=alice)  # a second logout is no error

    for reply in (logout, twice):
        assert reply.raw == b""
        assert_release_reads(reply, client.schema)
    assert (await admin.status()).active_sessions == 1
    assert not (await client.Heartbeat(session_id=alice)).msg.granted
    assert (await client.Heartbeat(session_id=bob)).msg.granted
    # Signing in again after logging out gets a new session.
    assert await _login_session(client, "alice") != alice


# --- releases without sessions are never signed out -----------------------------------


@pytest.mark.parametrize(
    "release", params([r for r in RELEASES if "Heartbeat" not in schema(r).rpcs])
)
async def test_release_without_heartbeats_is_never_signed_out(
    server: RunningServer,
    admin: AdminClient,
    channel: grpc.aio.Channel,
    release: str,
) -> None:
    await _granted(server, admin)  # purchased: no evaluation runs out
    old = LegacyClient(release, channel)
    v5 = LegacyClient("v5", channel)
    request = login_request(old.schema, "alice")

    first = await old.Login(**request)
    assert first.msg.granted
    assert first.fields == {1, 2}  # no session: nothing to heartbeat
    assert_release_reads(first, old.schema)
    bob = await _login_session(v5, "bob")  # a 5.x client beside it, that then goes silent
    assert (await admin.status()).active_sessions == 1

    server.clock.advance(days=10)  # far beyond three missed heartbeats

    later = await old.Login(**request)
    assert later.raw == first.raw  # granted, the very same bytes as at start-up
    assert (await admin.status()).active_sessions == 0
    ended = await v5.Heartbeat(session_id=bob)  # only the silent 5.x session ended
    assert ended.msg.granted is False
    assert ended.msg.message == SESSION_ENDED
