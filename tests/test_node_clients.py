"""The frozen 4.x and 5.x client protocols, driven from Node.js against a live 6.x server.

The deployed Windows clients are not built on Python's protobuf
(/work/shared/legacy-clients.md). Here a separate program, tests/node/legacy_client.mjs,
loads the frozen .proto of one release with @grpc/proto-loader and calls the server
with @grpc/grpc-js, decoding replies as that release does: fields it does not define are
dropped, and a DenyReason value it does not define stays a bare number (enums: String),
which is what these tests must never see.

Each node run is a real subprocess started from the test's event loop (the server runs in
that loop too), given a script of calls on stdin and printing one JSON line per reply.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from officestatus_client import AdminClient
from tests.messages import (
    DISABLED,
    EVALUATION_EXPIRED,
    OVER_CAPACITY,
    SESSION_ENDED,
    UNKNOWN,
    WELCOME,
    WELCOME_EVALUATION,
)
from tests.support import RunningServer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "node" / "legacy_client.mjs"
NODE_TIMEOUT = 20.0  # seconds for a whole node run; each takes well under one
HEARTBEAT = 30  # the `server` fixture's heartbeat interval, in seconds

VERSION = {4: "4.2.0", 5: "5.1.3"}  # the client_version each release sends
RELEASES = [pytest.param(4, id="4.x"), pytest.param(5, id="5.x")]
DENY_REASONS = {  # every name 4.x and 5.x define
    "DENY_REASON_UNSPECIFIED",
    "DENY_REASON_USER_UNKNOWN",
    "DENY_REASON_USER_DISABLED",
    "DENY_REASON_NOT_LICENSED",
    "DENY_REASON_EVALUATION_EXPIRED",
}

Json = dict[str, Any]


# --- running the node client ----------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable; a missing node_modules is a failure, never a skip."""
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not on PATH")
    for package in ("@grpc/grpc-js", "@grpc/proto-loader"):
        if not (ROOT / "node_modules" / package / "package.json").is_file():
            pytest.fail(f"{ROOT / 'node_modules' / package} is missing: run `npm ci` in {ROOT}")
    return path


async def run_node(
    node: str, release: int, address: str, calls: list[Json]
) -> tuple[int, str, str]:
    """Run the node client of `release` on `calls`: its exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        str(release),
        address,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=SCRIPT.parent,  # node_modules is found from the repository root, not the cwd
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(json.dumps(calls).encode()), NODE_TIMEOUT
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"the node client did not finish in {NODE_TIMEOUT} s: {calls}")
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def node_calls(
    node: str, server: RunningServer, release: int, calls: list[Json]
) -> list[Json]:
    """What the node client of `release` got for each of `calls`: a reply or an error.

    Fails unless every call was answered as the script expected and every DenyReason
    was one the release defines by name.
    """
    code, out, err = await run_node(node, release, server.address, calls)
    assert code == 0, f"node client exited {code}: {err}\n{out}"
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["rpc"] for r in results] == [c["rpc"] for c in calls], out
    for result in results:
        reason = result.get("reply", {}).get("reason", "DENY_REASON_UNSPECIFIED")
        assert reason in DENY_REASONS, f"{release}.x cannot read reason {reason!r}: {result}"
    return results


async def node_replies(
    node: str, server: RunningServer, release: int, calls: list[Json]
) -> list[Json]:
    """The replies to `calls`, none of which may fail."""
    return [r["reply"] for r in await node_calls(node, server, release, calls)]


def login(user: str, release: int) -> Json:
    request = {"user_name": user, "client_version": VERSION[release], "machine_name": "PC-042"}
    return {"rpc": "Login", "request": request}


def heartbeat(session_id: str = "$session") -> Json:
    return {"rpc": "Heartbeat", "request": {"session_id": session_id}}


def logout(session_id: str = "$session") -> Json:
    return {"rpc": "Logout", "request": {"session_id": session_id}}


LICENSE_STATUS: Json = {"rpc": "GetLicenseStatus", "request": {}}  # 4.x and 5.x send nothing


def refused_login(release: int, reason: str, message: str) -> Json:
    """A refused LoginReply, whole, as `release` decodes it."""
    reply: Json = {"granted": False, "message": message, "reason": reason}
    if release >= 5:
        reply |= {"session_id": "", "heartbeat_interval_seconds": 0}
    return reply


def granted_login(release: int, reply: Json, message: str) -> str:
    """Check a granted LoginReply, whole; its session id ("" for 4.x, which has none)."""
    expected: Json = {"granted": True, "message": message, "reason": "DENY_REASON_UNSPECIFIED"}
    if release < 5:
        assert reply == expected
        return ""
    session_id = reply["session_id"]
    assert isinstance(session_id, str)
    assert session_id
    assert reply == expected | {"session_id": session_id, "heartbeat_interval_seconds": HEARTBEAT}
    return session_id


# --- Login ----------------------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
async def test_granted_login(
    node: str, server: RunningServer, admin: AdminClient, release: int
) -> None:
    await admin.add_users(["alice"], enable=True)

    (reply,) = await node_replies(node, server, release, [login("alice", release)])

    granted_login(release, reply, WELCOME_EVALUATION.format(name="alice", days=30))
    if release == 4:
        assert "session_id" not in reply  # 4.x knows nothing of sessions


async def unknown_user(server: RunningServer, admin: AdminClient) -> tuple[str, str, str]:
    await admin.add_users(["alice"], enable=True)
    return "mallory", "DENY_REASON_USER_UNKNOWN", UNKNOWN.format(name="mallory")


async def disabled_user(server: RunningServer, admin: AdminClient) -> tuple[str, str, str]:
    await admin.add_users(["alice"])
    return "alice", "DENY_REASON_USER_DISABLED", DISABLED.format(name="alice")


async def evaluation_expired(server: RunningServer, admin: AdminClient) -> tuple[str, str, str]:
    await admin.add_users(["alice"], enable=True)
    server.clock.advance(days=31)  # and no license installed
    return "alice", "DENY_REASON_EVALUATION_EXPIRED", EVALUATION_EXPIRED


Refusal = Callable[[RunningServer, AdminClient], Awaitable[tuple[str, str, str]]]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(unknown_user, id="unknown-user"),
        pytest.param(disabled_user, id="disabled-user"),
        pytest.param(evaluation_expired, id="evaluation-expired"),
    ],
)
@pytest.mark.parametrize("release", RELEASES)
async def test_refused_login(
    node: str, server: RunningServer, admin: AdminClient, release: int, setup: Refusal
) -> None:
    user, reason, message = await setup(server, admin)

    (reply,) = await node_replies(node, server, release, [login(user, release)])

    assert reply == refused_login(release, reason, message)


@pytest.mark.parametrize("release", RELEASES)
async def test_over_capacity_is_not_licensed_to_a_legacy_client(
    node: str, server: RunningServer, admin: AdminClient, release: int
) -> None:
    """6.x says DENY_REASON_OVER_CAPACITY (5): 4.x and 5.x must get a name they define."""
    await admin.install_license(server.vendor.issue(3))
    two, _ = await admin.install_license(server.vendor.issue(2))
    users = ["u1", "u2", "u3", "u4", "u5"]
    await admin.add_users(users)
    for user in users:  # one by one: the order in which they hold seats
        await admin.enable_users([user])
    _, status = await admin.remove_license(two.license_id, force=True)
    assert status.over_capacity == ("u4", "u5")

    replies = await node_replies(
        node, server, release, [*(login(u, release) for u in users), LICENSE_STATUS]
    )

    for user, reply in zip(users[:3], replies[:3], strict=True):
        granted_login(release, reply, WELCOME.format(name=user))
    for reply in replies[3:5]:
        assert reply == refused_login(release, "DENY_REASON_NOT_LICENSED", OVER_CAPACITY)
    assert (replies[5]["seats_total"], replies[5]["seats_used"]) == (3, 3)


# --- GetLicenseStatus -----------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
async def test_license_status(
    node: str, server: RunningServer, admin: AdminClient, release: int
) -> None:
    await admin.add_users(["alice", "bob"], enable=True)
    (evaluating,) = await node_replies(node, server, release, [LICENSE_STATUS])

    await admin.install_license(server.vendor.issue(25))
    await admin.install_license(server.vendor.issue(10))
    await admin.add_users(["carol"], enable=True)
    (licensed,) = await node_replies(node, server, release, [LICENSE_STATUS])

    major = {"major_version": 6} if release >= 5 else {}  # 4.x has no major_version
    assert evaluating == {
        "seats_total": 0,
        "seats_used": 2,
        "evaluation": True,
        "evaluation_days_left": 30,
        **major,
    }
    assert licensed == {
        "seats_total": 35,
        "seats_used": 3,
        "evaluation": False,
        "evaluation_days_left": 0,
        **major,
    }


# --- 5.x sessions: Heartbeat and Logout -----------------------------------------------


async def test_5x_heartbeat_refused_once_the_user_is_disabled(
    node: str, server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["alice"], enable=True)
    signed_in, alive = await node_replies(node, server, 5, [login("alice", 5), heartbeat()])
    session_id = granted_login(5, signed_in, WELCOME_EVALUATION.format(name="alice", days=30))
    assert signed_in["heartbeat_interval_seconds"] > 0
    assert alive == {"granted": True, "reason": "DENY_REASON_UNSPECIFIED", "message": ""}

    await admin.disable_users(["alice"])
    server.clock.advance(seconds=HEARTBEAT)
    refused, logged_out, after = await node_replies(
        node, server, 5, [heartbeat(session_id), logout(session_id), heartbeat(session_id)]
    )

    assert refused == {
        "granted": False,
        "reason": "DENY_REASON_USER_DISABLED",
        "message": DISABLED.format(name="alice"),
    }
    assert logged_out == {}
    # 6.x says DENY_REASON_SESSION_ENDED; 5.x gets UNSPECIFIED and the message.
    assert after == {
        "granted": False,
        "reason": "DENY_REASON_UNSPECIFIED",
        "message": SESSION_ENDED,
    }


async def test_5x_logout_ends_the_session(
    node: str, server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["alice"], enable=True)

    replies = await node_replies(
        node, server, 5, [login("alice", 5), heartbeat(), logout(), heartbeat(), logout()]
    )

    signed_in, alive, logged_out, after, again = replies
    granted_login(5, signed_in, WELCOME_EVALUATION.format(name="alice", days=30))
    assert alive["granted"] is True
    assert logged_out == {}
    assert after == {
        "granted": False,
        "reason": "DENY_REASON_UNSPECIFIED",
        "message": SESSION_ENDED,
    }
    assert again == {}  # logging out twice is not an error
    assert (await admin.status()).active_sessions == 0


# --- the node client itself: it must not pass by accident -----------------------------


async def test_node_client_shows_an_undefined_reason_as_a_bare_number(
    node: str, server: RunningServer, admin: AdminClient
) -> None:
    """A client built on the 4.x .proto that says it is 6.0.0 is sent OVER_CAPACITY (5)."""
    await admin.install_license(server.vendor.issue(1))
    one, _ = await admin.install_license(server.vendor.issue(1))
    await admin.add_users(["u1"], enable=True)
    await admin.add_users(["u2"], enable=True)
    await admin.remove_license(one.license_id, force=True)

    calls = [{"rpc": "Login", "request": {"user_name": "u2", "client_version": "6.0.0"}}]
    code, out, err = await run_node(node, 4, server.address, calls)

    assert code == 0, err
    (result,) = map(json.loads, out.splitlines())
    assert result["reply"]["granted"] is False
    assert result["reply"]["reason"] == 5  # exactly what node_calls refuses
    with pytest.raises(AssertionError, match=r"4\.x cannot read reason 5"):
        await node_calls(node, server, 4, calls)


async def test_node_client_reports_errors_and_fails_on_unexpected_ones(
    node: str, server: RunningServer
) -> None:
    too_old = {"rpc": "Login", "request": {"user_name": "alice", "client_version": "2.0"}}

    (expected,) = await node_calls(node, server, 5, [{**too_old, "expect_error": True}])
    code, out, err = await run_node(node, 5, server.address, [too_old, LICENSE_STATUS])

    assert expected["error"]["code"] == "FAILED_PRECONDITION"
    assert "too old" in expected["error"]["details"]
    # The run stops at the first unexpected error, after printing it.
    assert code == 1
    assert [json.loads(line) for line in out.splitlines()] == [expected]
    assert "Login: unexpected error" in err


@pytest.mark.parametrize(
    ("release", "calls", "why"),
    [
        pytest.param(4, [heartbeat("x")], 'release 4 defines no rpc "Heartbeat"', id="no-rpc"),
        pytest.param(
            4,
            [{"rpc": "Login", "request": {"user_name": "alice", "session_id": "x"}}],
            "release 4 Login has no field session_id",
            id="no-field",
        ),
        pytest.param(5, [heartbeat()], "no Login reply gave a session_id", id="no-login-yet"),
        pytest.param(
            5,
            [login("mallory", 5), heartbeat()],
            "no Login reply gave a session_id",
            id="refused-login",
        ),
    ],
)
async def test_node_client_refuses_a_script_its_release_cannot_run(
    node: str, server: RunningServer, release: int, calls: list[Json], why: str
) -> None:
    code, out, err = await run_node(node, release, server.address, calls)

    assert code == 1
    assert why in err
    assert all("reply" in json.loads(line) for line in out.splitlines())  # only Logins ran
