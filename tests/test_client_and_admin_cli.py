"""The client package and `officestatus-admin`, in-process against a real running server.

The server runs in the test's event loop, so the CLI runs through `run(argv)` in that
same loop; one test goes through the synchronous `main(argv)` in a thread.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
from datetime import date
from pathlib import Path

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from officestatus_client import (
    AdminClient,
    AuthenticationError,
    DenyReason,
    NotFoundError,
    SeatClient,
    SeatsExhaustedError,
    UnavailableError,
)
from officestatus_client._errors import error_from_rpc
from officestatus_client.admin_cli import main, run
from tests.support import RunningServer


async def cli(
    server: RunningServer, *argv: str, token_file: Path | None = None
) -> tuple[int, str, str]:
    """Run officestatus-admin against `server`: exit code, stdout, stderr."""
    auth = ["--token-file", str(token_file)] if token_file else ["--data-dir", str(server.data_dir)]
    out, err = io.StringIO(), io.StringIO()
    code = await run(["--address", server.address, *auth, *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def free_address() -> str:
    """An address nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


def key_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "license.key"
    path.write_text(text)
    return path


# --- admin CLI ----------------------------------------------------------------------


async def test_install_add_enable_disable_and_status(server: RunningServer, tmp_path: Path) -> None:
    key = key_file(tmp_path, server.vendor.issue(3, license_id="L-ACME-1"))
    code, out, err = await cli(server, "license", "install", str(key))
    assert (code, err) == (0, "")
    assert "Installed license L-ACME-1 (purchased, 3 seats" in out
    assert "0 of 3 seats in use" in out

    names = tmp_path / "names.txt"
    names.write_text("carol\n\n  dave \n")
    code, out, _ = await cli(server, "user", "add", "ann", "bob", "--from-file", str(names))
    assert code == 0
    assert "Added 4 users: ann, bob, carol, dave." in out

    code, out, _ = await cli(server, "user", "enable", "ann", "bob", "carol")
    assert code == 0
    assert "3 of 3 seats in use" in out

    code, out, _ = await cli(server, "user", "disable", "bob")
    assert code == 0
    assert "Disabled 1 user: bob." in out

    code, out, _ = await cli(server, "user", "list")
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert rows == {"ann": "yes", "bob": "no", "carol": "yes", "dave": "no"}

    code, out, _ = await cli(server, "status")
    assert code == 0
    assert out.startswith("2 of 3 seats in use")
    assert "L-ACME-1" in out
    assert "In use: 2 of 3; 2 users enabled" in out
    assert "Support until: 2027-11-01" in out
    assert "Evaluation: ended by a purchase" in out


async def test_json_output(server: RunningServer, tmp_path: Path) -> None:
    key = key_file(tmp_path, server.vendor.issue(5, license_id="L-JSON-1"))
    code, out, _ = await cli(server, "--json", "license", "install", str(key))
    assert code == 0
    installed = json.loads(out)
    assert installed["license"]["license_id"] == "L-JSON-1"
    assert installed["license"]["purchase_date"] == "2026-11-01"
    assert installed["license"]["upgrades_license_id"] is None
    assert installed["status"]["seats_total"] == 5

    await cli(server, "user", "add", "ann", "--enable")
    code, out, _ = await cli(server, "--json", "status")
    assert code == 0
    status = json.loads(out)
    assert status["counting"] == [{"license_id": "L-JSON-1", "seats": 5, "kind": "purchased"}]
    assert (status["seats_total"], status["seats_used"], status["users_enabled"]) == (5, 1, 1)
    assert status["support_until"] == "2027-11-01"
    assert status["evaluation"] is False

    code, out, _ = await cli(server, "--json", "user", "list")
    [user] = json.loads(out)["users"]
    assert user["name"] == "ann"
    assert user["enabled"] is True
    assert user["enabled_at"].startswith("2026-11-02")


async def test_key_from_stdin(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(server.vendor.issue(2, license_id="L-STDIN")))
    code, out, _ = await cli(server, "license", "install", "-")
    assert code == 0
    assert "L-STDIN" in out


async def test_audit(server: RunningServer, tmp_path: Path) -> None:
    await cli(server, "license", "install", str(key_file(tmp_path, server.vendor.issue(3))))
    await cli(server, "user", "add", "ann")
    await cli(server, "user", "enable", "ann")
    code, out, _ = await cli(server, "audit")
    assert code == 0
    actions = [line.split()[3] for line in out.splitlines()[1:]]
    assert actions == ["users.enable", "users.add", "license.install"]

    code, out, _ = await cli(server, "--json", "audit", "--limit", "1")
    [record] = json.loads(out)["records"]
    assert record["action"] == "users.enable"
    assert record["subject"] == "ann"


async def test_refusals_exit_1_with_reason(server: RunningServer, tmp_path: Path) -> None:
    await cli(server, "license", "install", str(key_file(tmp_path, server.vendor.issue(1))))
    code, out, err = await cli(server, "user", "add", "ann", "bob", "--enable")
    assert (code, out) == (1, "")
    assert err.startswith("error: ")
    assert err.rstrip().endswith("(SEATS_EXHAUSTED)")
    assert "Traceback" not in err

    code, _, err = await cli(server, "license", "remove", "NOPE")
    assert code == 1
    assert err.rstrip().endswith("(LICENSE_NOT_FOUND)")

    code, _, err = await cli(server, "license", "install", str(key_file(tmp_path, "garbage")))
    assert code == 1
    assert "(KEY_MALFORMED)" in err


async def test_wrong_token_exits_4(server: RunningServer, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token-of-this-server-0123456789\n")
    code, out, err = await cli(server, "status", token_file=wrong)
    assert (code, out) == (4, "")
    assert err.startswith("error: ")
    assert "Traceback" not in err


async def test_missing_token_file_exits_4(server: RunningServer, tmp_path: Path) -> None:
    code, _, err = await cli(server, "status", token_file=tmp_path / "absent")
    assert code == 4
    assert "(ADMIN_TOKEN_FILE_MISSING)" in err


async def test_unreachable_server_exits_3(server: RunningServer) -> None:
    address = free_address()
    out, err = io.StringIO(), io.StringIO()
    argv = ["--address", address, "--data-dir", str(server.data_dir), "status"]
    code = await run(argv, out, err)
    assert code == 3
    assert f"the license server at {address} cannot be reached" in err.getvalue()
    assert "(UNAVAILABLE)" in err.getvalue()


async def test_usage_errors_exit_2(server: RunningServer, tmp_path: Path) -> None:
    # Checked before the token is read: a usage error is reported as one.
    code, _, err = await cli(server, "user", "enable", token_file=tmp_path / "absent")
    assert code == 2
    assert "name at least one user" in err
    code, _, _ = await cli(server, "license", "install", str(tmp_path / "absent.key"))
    assert code == 2
    code, _, _ = await cli(server, "no-such-command")
    assert code == 2


async def test_main_entry_point(server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--address", server.address, "--data-dir", str(server.data_dir), "status"]
    # main() runs its own event loop, so it cannot share the server's: give it a thread.
    code = await asyncio.to_thread(main, argv)
    assert code == 0
    assert "evaluation" in capsys.readouterr().out


# --- the client library -------------------------------------------------------------


async def test_seat_client_session(server: RunningServer) -> None:
    async with AdminClient(server.address, server.token) as admin:
        await admin.install_license(server.vendor.issue(2))
        users, status = await admin.add_users(["ann", "bob"], enable=True)
        assert [u.name for u in users] == ["ann", "bob"]
        assert status.seats_used == 2

    async with SeatClient(server.address) as client:
        hello = await client.handshake()
        assert hello.major_version == 6
        denied = await client.login("nobody")
        assert not denied.granted
        assert denied.reason is DenyReason.USER_UNKNOWN
        granted = await client.login("ann", machine_name="pc-1")
        assert granted.granted
        assert granted.license is not None
        assert granted.license.seats_total == 2
        assert (await client.heartbeat(granted.session_id)).granted
        await client.logout(granted.session_id)
        ended = await client.heartbeat(granted.session_id)
        assert not ended.granted
        # A session the server no longer holds is answered as for 5.x (the oldest with
        # sessions), where SESSION_ENDED does not exist yet.
        assert ended.reason in (DenyReason.SESSION_ENDED, DenyReason.UNSPECIFIED)
        assert "session has ended" in ended.message
        assert (await client.license_status()).seats_used == 2


async def test_admin_client_errors_and_models(server: RunningServer) -> None:
    async with AdminClient.local(server.address, server.data_dir) as admin:
        await admin.install_license(server.vendor.issue(1, license_id="L-ONE"))
        [lic] = await admin.list_licenses()
        assert lic.purchase_date == date(2026, 11, 1)
        assert lic.counts
        assert lic.not_counting_reason is None
        await admin.add_users("ann", enable=True)
        with pytest.raises(SeatsExhaustedError) as exhausted:
            await admin.add_users(["bob"], enable=True)
        assert exhausted.value.reason == "SEATS_EXHAUSTED"
        assert exhausted.value.code == "RESOURCE_EXHAUSTED"
        with pytest.raises(NotFoundError):
            await admin.enable_users(["zed"])

    async with AdminClient(server.address, "x" * 40) as wrong:
        with pytest.raises(AuthenticationError):
            await wrong.status()

    async with SeatClient(free_address()) as client:
        with pytest.raises(UnavailableError):
            await client.license_status()


def test_error_conversion_without_rich_status() -> None:
    err = AioRpcError(grpc.StatusCode.DATA_LOSS, Metadata(), Metadata(), details="lost")
    converted = error_from_rpc(err, "host:1")
    assert type(converted).__name__ == "ServerError"
    assert (converted.message, converted.reason, converted.code) == ("lost", "", "DATA_LOSS")


def test_admin_client_without_token() -> None:
    with pytest.raises(AuthenticationError):
        AdminClient("host:1", "")
