"""Tamper-evident audit, online backup and restore, and a clock set back: end to end."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from officestatus_client import AdminClient, DenyReason, PreconditionFailedError, SeatClient
from officestatus_client.admin_cli import EXIT_FOUND_PROBLEMS, EXIT_OK, EXIT_USAGE
from tests.support import RunningServer, Vendor, admin_cli


async def _cli(server: RunningServer, *argv: str) -> tuple[int, str]:
    code, out, err = await admin_cli(server, *argv)
    return code, out + err


async def test_audit_verify_finds_a_record_edited_in_the_database(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(5))
    await admin.add_users(["ann", "bo"], enable=True)
    await admin.disable_users(["bo"])
    code, out = await _cli(server, "audit", "verify")
    assert code == EXIT_OK, out
    assert "Audit log intact: 3 records checked." in out
    records = await admin.audit()
    assert records[0].previous_hash == records[1].hash

    # Someone hides that bo was disabled, with a database tool, while the server runs.
    db = sqlite3.connect(server.config.database_path)
    db.execute("UPDATE audit SET result = 'nothing' WHERE action = 'users.disable'")
    db.commit()
    db.close()
    code, out = await _cli(server, "audit", "verify")
    assert code == EXIT_FOUND_PROBLEMS
    assert "Audit log TAMPERED" in out
    assert "record 3 was edited after it was written" in out


async def test_a_backup_taken_while_serving_restores_to_the_same_state(
    server: RunningServer, admin: AdminClient, vendor: Vendor, tmp_path: Path
) -> None:
    await admin.install_license(vendor.issue(25, license_id="L-BACK"))
    await admin.add_users([f"u{i}" for i in range(30)])
    await admin.enable_users([f"u{i}" for i in range(20)])
    before = (await admin.status(), await admin.list_users(), await admin.list_licenses())
    audit_before = await admin.audit()

    backup = tmp_path / "nightly.db"
    # Admin calls go on while the backup runs; the copy is one consistent moment.
    busy = asyncio.gather(*(admin.enable_users([f"u{i}"]) for i in range(20, 25)))
    code, out = await _cli(server, "backup", str(backup))
    await busy
    assert code == EXIT_OK, out
    assert f"Backup written to {backup}" in out
    assert "integrity ok" in out
    code, out = await _cli(server, "backup", str(backup))
    assert code == EXIT_USAGE
    assert "exists already" in out

    # Restore exactly as the README says: stop, replace the database, start.
    await admin.disable_users(["u0", "u1"])
    await server.stop()
    data = server.config.database_path
    for suffix in ("-wal", "-shm"):
        Path(f"{data}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, data)
    await server.start()
    async with AdminClient(server.address, server.token) as restored:
        users = await restored.list_users()
        status = await restored.status()
        licenses = await restored.list_licenses()
        audit = await restored.audit()
        report = await restored.verify_audit()
    enabled = {u.name for u in users if u.enabled}
    # The copy holds everything before the backup, and some or all of the calls made
    # during it, each whole: never u0 or u1 disabled, never a half-made change.
    assert {f"u{i}" for i in range(20)} <= enabled <= {f"u{i}" for i in range(25)}
    assert licenses == before[2]
    assert status.seats_total == before[0].seats_total
    assert audit[-len(audit_before) :] == audit_before
    assert report.intact


async def test_a_clock_set_back_ends_the_evaluation_and_says_why(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.add_users(["ann"], enable=True)
    server.clock.advance(days=20)
    async with SeatClient(server.address) as seat:
        assert (await seat.login("ann")).granted
        # Within the tolerance (an NTP correction): nothing happens.
        server.clock.advance(minutes=-30)
        assert (await seat.login("ann")).granted
        # Set back ten days to stretch the evaluation: it ends instead.
        server.clock.advance(days=-10)
        refused = await seat.login("ann")
    assert refused.reason is DenyReason.EVALUATION_EXPIRED
    assert "clock was set back" in refused.message
    status = await admin.status()
    assert not status.evaluation
    assert "The system clock was set back" in status.clock_warning
    assert (await admin.audit())[0].action == "clock.set_back"
    code, out = await _cli(server, "status")
    assert code == EXIT_OK
    assert "WARNING: The system clock was set back" in out
    # Setting it forward again does not bring the evaluation back, nor does an extension.
    server.clock.advance(days=10)
    with pytest.raises(PreconditionFailedError) as refused_extension:
        await admin.install_license(
            vendor.extension(status.installation_id, server.clock.now.date() + timedelta(days=30))
        )
    assert refused_extension.value.reason == "EVALUATION_CLOCK_SET_BACK"
    # A purchased license works as ever.
    await admin.install_license(vendor.issue(5))
    async with SeatClient(server.address) as seat:
        assert (await seat.login("ann")).granted


async def test_a_clock_set_back_while_the_server_was_stopped_is_found_at_start(
    server: RunningServer, vendor: Vendor
) -> None:
    server.clock.advance(days=5)
    await server.restart()  # writes down the latest time seen
    await server.stop()
    server.clock.advance(days=-4)
    await server.start()
    async with AdminClient(server.address, server.token) as admin:
        status = await admin.status()
    assert status.evaluation_expired
    assert "set back" in status.clock_warning


async def test_a_licensed_server_keeps_working_when_the_clock_goes_back(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(3))
    await admin.add_users(["ann"], enable=True)
    server.clock.advance(days=100)
    async with SeatClient(server.address) as seat:
        assert (await seat.login("ann")).granted
        server.clock.advance(days=-50)
        again = await seat.login("ann")
    assert again.granted
    assert "set back" in (await admin.status()).clock_warning
