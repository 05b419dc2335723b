"""Small defects found on the way (issue 12): what the log says about a refused admin
change, the health service's List, `audit verify --json` on a tampered log, and license
keys whose dates cannot be right."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from officestatus.admin import admin_service_pb2 as apb
from officestatus.admin import admin_service_pb2_grpc as apb_grpc
from officestatus_client import AdminClient, InvalidArgumentError
from officestatus_client.admin_cli import EXIT_FOUND_PROBLEMS, EXIT_OK
from officestatus_server.cli.vendor_main import main as vendor_main
from officestatus_server.core import b64url
from officestatus_server.core.keys import PREFIX, check_not_future, read_key
from officestatus_server.errors import KeyRejected, NotStarted
from officestatus_server.rpc.errors import code_for
from officestatus_server.service import LicenseService
from officestatus_server.storage.sqlite import SqliteStore
from tests.process import start_server_process
from tests.support import START, RunningServer, Vendor, admin_cli

CALLER_GONE = "a change finished after its caller had gone"


def _metadata(data_dir: Path) -> tuple[tuple[str, str], ...]:
    token = (data_dir / "admin-token").read_text().strip()
    return (("authorization", f"Bearer {token}"),)


def _signed(vendor: Vendor, **fields: Any) -> str:
    """A key signed by `vendor` with payload fields the vendor tool would never write."""
    payload = {**vendor.key(5, license_id="L-DATES").payload(), **fields}
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("ascii")
    signed = f"{PREFIX}.{b64url.encode(body)}"
    signature = vendor.signing.private_key.sign(signed.encode("ascii"))
    return f"{signed}.{b64url.encode(signature)}"


# --- a refused admin change in the log ----------------------------------------------------


async def test_a_refused_admin_change_is_not_logged_as_finished_after_its_caller_left(
    tmp_path: Path, vendor: Vendor
) -> None:
    data = tmp_path / "data"
    pub = vendor.write_public_key(tmp_path)
    server = await start_server_process(data, "--vendor-key", str(pub))
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            admin = apb_grpc.AdminServiceStub(channel)
            md = _metadata(data)
            await admin.InstallLicense(apb.InstallLicenseRequest(key=vendor.issue(1)), metadata=md)
            await admin.AddUsers(apb.AddUsersRequest(user_names=["ann", "bo"]), metadata=md)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin.EnableUsers(
                    apb.EnableUsersRequest(user_names=["ann", "bo"]), metadata=md
                )
            assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin.InstallLicense(
                    apb.InstallLicenseRequest(key=vendor.issue(1, major=5)), metadata=md
                )
            assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    finally:
        code, out = await server.stop()
    assert code == 0
    # The caller heard each refusal; the log does not claim nobody was there to hear it.
    assert CALLER_GONE not in out
    assert "Traceback" not in out


async def test_a_refused_change_whose_caller_left_is_still_logged(
    server: RunningServer, admin: AdminClient, vendor: Vendor, caplog: pytest.LogCaptureFixture
) -> None:
    await admin.install_license(vendor.issue(1))
    await admin.add_users(["ann", "bo"])
    assert server.app is not None
    service = server.app.service
    caplog.set_level(logging.INFO, logger="officestatus.service")
    # A change waits its turn behind another (here: the change lock, held by the test);
    # its caller gives up meanwhile, as a client does at its deadline.
    async with service._lock:
        caller = asyncio.create_task(service.enable_users(["ann", "bo"]))
        await asyncio.sleep(0)
        caller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await caller
    for _ in range(100):
        if CALLER_GONE in caplog.text:
            break
        await asyncio.sleep(0.01)
    gone = [r.getMessage() for r in caplog.records if CALLER_GONE in r.getMessage()]
    assert len(gone) == 1, caplog.text
    assert "seat" in gone[0]
    # The seats were not given anyway.
    assert (await admin.status()).seats_used == 0


# --- the health service's List ------------------------------------------------------------


async def test_health_list_answers_every_service_without_a_traceback(tmp_path: Path) -> None:
    server = await start_server_process(tmp_path / "data")
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.List(health_pb2.HealthListRequest())
    finally:
        code, out = await server.stop()
    assert {name: s.status for name, s in reply.statuses.items()} == {
        "": health_pb2.HealthCheckResponse.SERVING,
        "officestatus.licensing.SeatService": health_pb2.HealthCheckResponse.SERVING,
        "officestatus.admin.AdminService": health_pb2.HealthCheckResponse.SERVING,
    }
    assert code == 0
    assert "Traceback" not in out
    assert "ERROR" not in out


# --- audit verify --json ------------------------------------------------------------------


async def _cli(server: RunningServer, *argv: str) -> tuple[int, str]:
    code, out, err = await admin_cli(server, *argv)
    return code, out + err


async def test_audit_verify_json_exits_5_on_a_log_edited_while_the_server_was_stopped(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(5))
    await admin.add_users(["ann", "bo"], enable=True)
    code, out = await _cli(server, "--json", "audit", "verify")
    assert code == EXIT_OK, out
    assert json.loads(out)["intact"] is True

    def hide_the_users(db: sqlite3.Connection) -> None:
        db.execute("UPDATE audit SET result = 'nothing' WHERE action = 'users.add'")

    await server.restart(edit=hide_the_users)
    code, out = await _cli(server, "--json", "audit", "verify")
    assert code == EXIT_FOUND_PROBLEMS, out
    report = json.loads(out)
    assert report["intact"] is False
    assert any("edited after it was written" in p for p in report["problems"]), report
    # Text mode says the same with the same exit code.
    code, out = await _cli(server, "audit", "verify")
    assert code == EXIT_FOUND_PROBLEMS
    assert "Audit log TAMPERED" in out


# --- license key dates --------------------------------------------------------------------


def test_a_key_purchased_after_it_was_issued_is_not_valid(vendor: Vendor) -> None:
    with pytest.raises(KeyRejected) as built:
        replace(vendor.key(5), purchase_date=date(2026, 11, 3), issue_date=date(2026, 11, 2))
    assert built.value.reason == "KEY_DATES_INVALID"
    assert "purchased on 2026-11-03, after it was issued on 2026-11-02" in built.value.message

    text = _signed(vendor, purchased="2026-11-03", issued="2026-11-02")
    with pytest.raises(KeyRejected) as read:
        read_key(text, vendor.trust)
    assert read.value.reason == "KEY_DATES_INVALID"


@pytest.mark.parametrize(
    ("days_ahead", "refused"),
    [(-400, False), (0, False), (1, False), (2, True), (3000, True)],
)
def test_a_key_dated_more_than_a_day_ahead_is_refused(
    vendor: Vendor, days_ahead: int, refused: bool
) -> None:
    today = date(2026, 11, 2)
    day = today + timedelta(days=days_ahead)
    key = vendor.key(5, purchased=day)
    if not refused:
        check_not_future(key, today)
        return
    with pytest.raises(KeyRejected) as caught:
        check_not_future(key, today)
    assert caught.value.reason == "KEY_DATED_IN_FUTURE"
    assert f"dated {day.isoformat()}, more than a day after today (2026-11-02)" in (
        caught.value.message
    )


async def test_the_server_refuses_to_install_keys_with_impossible_dates(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    today = START.date()
    future = vendor.issue(5, license_id="L-FUTURE", purchased=today + timedelta(days=2))
    with pytest.raises(InvalidArgumentError) as caught:
        await admin.install_license(future)
    assert caught.value.reason == "KEY_DATED_IN_FUTURE"
    backwards = _signed(vendor, purchased="2026-11-02", issued="2026-11-01")
    with pytest.raises(InvalidArgumentError) as caught:
        await admin.install_license(backwards)
    assert caught.value.reason == "KEY_DATES_INVALID"
    assert (await admin.list_licenses()) == []

    # A key dated tomorrow (the vendor's time zone may be ahead) installs.
    await admin.install_license(vendor.issue(5, purchased=today + timedelta(days=1)))
    assert (await admin.status()).seats_total == 5


async def test_a_stored_key_with_impossible_dates_stops_counting_at_start(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(5, license_id="L-DATES"))
    await admin.install_license(vendor.issue(3, license_id="L-GOOD"))
    assert (await admin.status()).seats_total == 8
    backwards = _signed(vendor, purchased="2026-11-02", issued="2026-11-01")

    def replace_key(db: sqlite3.Connection) -> None:
        db.execute("UPDATE licenses SET key_text = ? WHERE license_id = 'L-DATES'", (backwards,))

    await server.restart(edit=replace_key)
    async with AdminClient(server.address, server.token) as again:
        status = await again.status()
        licenses = {lic.license_id: lic for lic in await again.list_licenses()}
    assert status.seats_total == 3
    assert [n.license_id for n in status.not_counting] == ["L-DATES"]
    assert "after it was issued" in status.not_counting[0].reason
    assert not licenses["L-DATES"].counts
    assert licenses["L-GOOD"].counts


def test_a_stored_key_dated_ahead_of_the_clock_still_verifies(vendor: Vendor) -> None:
    # The future check is at install only: a later start never re-judges it (the clock
    # watch handles a clock set back).
    key, _ = read_key(vendor.issue(5, purchased=date(2030, 1, 1)), vendor.trust)
    assert key.purchase_date == date(2030, 1, 1)


# --- the vendor tool ----------------------------------------------------------------------


@pytest.fixture
def signing_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    out = tmp_path / "keys"
    assert vendor_main(["keygen", "--key-id", "kms-test", "--out-dir", str(out)]) == 0
    capsys.readouterr()
    return str(out / "kms-test.private")


@pytest.mark.parametrize(
    ("dates", "reason", "says"),
    [
        pytest.param(
            ("--purchase-date", "2026-03-02", "--issue-date", "2026-03-01"),
            "KEY_DATES_INVALID",
            "purchased on 2026-03-02, after it was issued on 2026-03-01",
            id="purchased-after-issued",
        ),
        pytest.param(
            ("--purchase-date", (date.today() + timedelta(days=5)).isoformat()),
            "KEY_DATES_INVALID",
            "after it was issued on",
            id="purchased-in-the-future",
        ),
        pytest.param(
            ("--issue-date", (date.today() + timedelta(days=2)).isoformat()),
            "KEY_DATED_IN_FUTURE",
            "more than a day after today",
            id="issued-in-the-future",
        ),
    ],
)
def test_the_vendor_tool_never_issues_a_key_with_impossible_dates(
    tmp_path: Path,
    signing_key: str,
    capsys: pytest.CaptureFixture[str],
    dates: tuple[str, ...],
    reason: str,
    says: str,
) -> None:
    out = tmp_path / "key.txt"
    argv = ["issue", "--signing-key", signing_key, "--seats", "5", "--customer", "ACME"]
    assert vendor_main([*argv, *dates, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert says in err
    assert f"({reason})" in err
    assert not out.exists()


def test_the_vendor_tool_issues_a_key_dated_today(
    tmp_path: Path, signing_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["issue", "--signing-key", signing_key, "--seats", "5", "--customer", "ACME"]
    assert vendor_main(argv) == 0
    assert "BEGIN OFFICESTATUS LICENSE KEY" in capsys.readouterr().out


def test_a_call_before_the_service_has_started_is_unavailable_not_a_storage_failure(
    tmp_path: Path, vendor: Vendor
) -> None:
    service = LicenseService(SqliteStore(tmp_path / "officestatus.db"), vendor.trust)
    with pytest.raises(NotStarted, match="has not started yet") as refused:
        service.status()
    assert refused.value.reason == "NOT_STARTED"
    assert code_for(refused.value) == code_pb2.UNAVAILABLE
    assert not (tmp_path / "officestatus.db").exists()
