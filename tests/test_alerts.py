"""Seat and evaluation alerts on a real server (in this process, real gRPC, real SQLite):
crossing 90% and 100% of the seats warns once each in the log, logins never warn, a drop
below clears the alert and a new crossing warns again; `officestatus-admin status` and the
metrics show the alerts in force; the evaluation's last 7 days warn too. And the log of a
real server process, with thresholds of its own."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from officestatus_client import AdminClient, SeatClient
from officestatus_server import service
from tests.metrics_support import metrics_url, scrape
from tests.process import start_server_process
from tests.support import FakeClock, RunningServer, Vendor, admin_cli

ALERTS = "officestatus.alerts"
SEAT_90 = "9 of 10 seats in use (90%), the 90% seat alert: install a license or disable users"
SEAT_100 = "10 of 10 seats in use (100%), the 100% seat alert: install a license or disable users"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The alert warnings logged so far."""
    return [
        r.getMessage() for r in caplog.records if r.name == ALERTS and r.levelno == logging.WARNING
    ]


async def alert_gauges(server: RunningServer) -> dict[str, float]:
    """officestatus_alert_active by kind, scraped over HTTP."""
    found = await scrape(metrics_url(server))
    assert found.types["officestatus_alert_active"] == "gauge"
    return {
        dict(labels)["kind"]: value
        for labels, value in found.labelled("officestatus_alert_active").items()
    }


async def test_seat_thresholds_warn_once_per_crossing_and_show_in_status_and_metrics(
    metered: RunningServer, vendor: Vendor, caplog: pytest.LogCaptureFixture
) -> None:
    users = [f"u{i:02d}" for i in range(1, 11)]
    async with AdminClient(metered.address, metered.token) as admin:
        await admin.install_license(vendor.issue(10))
        await admin.add_users(users)
        await admin.enable_users(users[:8])
        assert warnings(caplog) == []  # 80%

        _, status = await admin.enable_users(["u09"])
        assert warnings(caplog) == [SEAT_90]
        assert [(a.kind, a.threshold, a.message) for a in status.alerts] == [
            ("seats_90", 90, SEAT_90)
        ]

        # Logins, and looking at the status, never warn again.
        async with SeatClient(metered.address) as seat:
            for _ in range(5):
                assert (await seat.login("u01", machine_name="PC-1")).granted
        await admin.status()
        assert warnings(caplog) == [SEAT_90]

        # The admin who enables the user reads the alerts then in force.
        code, out, _ = await admin_cli(metered, "user", "enable", "u10")
        assert code == 0
        lines = out.splitlines()
        assert lines[:2] == [
            "Enabled 1 user: u10.",
            "10 of 10 seats in use; support until 2027-11-01",
        ]
        assert [line.split(" (since ")[0] for line in lines[2:]] == [
            f"ALERT: {SEAT_100.replace('100% seat', '90% seat')}",
            f"ALERT: {SEAT_100}",
        ]
        assert warnings(caplog) == [SEAT_90, SEAT_100]

        code, out, _ = await admin_cli(metered, "status")
        assert code == 0
        # Each alert in force, with the figures now.
        assert f"ALERT: {SEAT_100.replace('100% seat', '90% seat')} (since " in out
        assert f"ALERT: {SEAT_100} (since " in out
        code, out, _ = await admin_cli(metered, "status", "--json")
        assert code == 0
        shown = json.loads(out)["alerts"]
        assert [(a["kind"], a["threshold"]) for a in shown] == [
            ("seats_90", 90),
            ("seats_100", 100),
        ]
        assert shown[0]["since"].startswith("2026-11-02T09:00")
        assert await alert_gauges(metered) == {
            "seats_90": 1,
            "seats_100": 1,
            "evaluation_ending": 0,
        }

        # Below 90%: cleared; crossing again warns again.
        _, status = await admin.disable_users(["u09", "u10"])
        assert status.alerts == ()
        await admin.enable_users(["u09"])
        assert warnings(caplog) == [SEAT_90, SEAT_100, SEAT_90]
        await asyncio.sleep(1.0)  # a scrape within a second gets the last one's figures
        assert (await alert_gauges(metered))["seats_100"] == 0
        code, out, _ = await admin_cli(metered, "status")
        assert code == 0
        shown_alerts = [line for line in out.splitlines() if line.startswith("ALERT")]
        assert len(shown_alerts) == 1
        assert shown_alerts[0].startswith(f"ALERT: {SEAT_90} (since ")


async def test_the_evaluations_last_7_days_warn_once(
    metered: RunningServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with AdminClient(metered.address, metered.token) as admin:
        await admin.add_users(["alice"], enable=True)
        clock.advance(days=22, hours=1)  # 8 days left: no alert yet
        assert (await admin.status()).alerts == ()
        assert warnings(caplog) == []

        clock.advance(days=1)  # 7 days left
        status = await admin.status()
        expected = "the evaluation ends in 7 days (2026-12-02): install a license"
        assert [(a.kind, a.message) for a in status.alerts] == [("evaluation_ending", expected)]
        assert warnings(caplog) == [expected]

        clock.advance(days=1)
        async with SeatClient(metered.address) as seat:
            assert (await seat.login("alice", machine_name="PC-1")).granted
        status = await admin.status()
        assert status.alerts[0].message.startswith("the evaluation ends in 6 days")
        assert warnings(caplog) == [expected]  # raised once, however many days remain
        assert (await alert_gauges(metered))["evaluation_ending"] == 1
        code, out, _ = await admin_cli(metered, "status")
        assert code == 0
        assert "ALERT: the evaluation ends in 6 days (2026-12-02): install a license" in out


async def test_the_evaluation_alert_is_raised_by_the_minute_check_with_nobody_asking(
    tmp_path: Path,
    vendor: Vendor,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The server's minute, shortened: the test waits for it, not a minute.
    monkeypatch.setattr(service, "HIGH_WATER_EVERY", timedelta(seconds=0.05))
    running = await RunningServer(tmp_path / "data", vendor, clock).start()
    try:
        clock.advance(days=23, hours=1)  # 7 days left; no admin call, no login
        for _ in range(100):
            if warnings(caplog):
                break
            await asyncio.sleep(0.05)
        assert warnings(caplog) == ["the evaluation ends in 7 days (2026-12-02): install a license"]
        await asyncio.sleep(0.2)  # further minutes: no second warning
        assert len(warnings(caplog)) == 1
    finally:
        await running.stop()


async def test_a_server_process_warns_in_its_log_once_per_crossing(
    tmp_path: Path, vendor: Vendor
) -> None:
    data = tmp_path / "data"
    pub = vendor.write_public_key(tmp_path)
    server = await start_server_process(
        data, "--vendor-key", str(pub), "--seat-alert-percent", "50,150"
    )
    try:
        token = (data / "admin-token").read_text(encoding="utf-8").strip()
        async with AdminClient(server.address, token) as admin, SeatClient(server.address) as seat:
            await admin.install_license(vendor.issue(2))
            second, _ = await admin.install_license(vendor.issue(2))
            await admin.add_users(["alice", "bob", "carol"])
            await admin.enable_users(["alice", "bob"])  # 2 of 4: 50%
            for _ in range(3):
                assert (await seat.login("alice", machine_name="PC-1")).granted
            await admin.disable_users(["bob"])  # 25%: cleared
            await admin.enable_users(["bob", "carol"])  # 75%: 50% crossed again
            await admin.remove_license(second.license_id, force=True)  # 3 for 2 seats: 150%
            status = await admin.status()
    finally:
        code, out = await server.stop()
    assert code == 0, out
    assert [a.kind for a in status.alerts] == ["seats_50", "seats_150"]
    warned = [line.split(" WARNING ", 1)[1] for line in out.splitlines() if " WARNING " in line]
    act = "install a license or disable users"
    assert warned == [
        f"officestatus.alerts: 2 of 4 seats in use (50%), the 50% seat alert: {act}",
        f"officestatus.alerts: 3 of 4 seats in use (75%), the 50% seat alert: {act}",
        "officestatus.alerts: 3 users enabled for 2 seats (150%), 1 over capacity, the 150% "
        f"seat alert: {act}",
    ]
    assert "INFO officestatus.alerts: alert seats_50 cleared" in out
