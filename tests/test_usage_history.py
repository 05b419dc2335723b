"""The usage history of a real server: logins counted per hour, flushed to the database,
kept for two years and no longer."""

from __future__ import annotations

import json
from datetime import timedelta

import grpc

from officestatus_client import AdminClient, SeatClient
from officestatus_server.core.usage import UsageHour, hour_of
from tests.legacy import LegacyClient
from tests.support import START, RunningServer, admin_cli


async def _log_in(server: RunningServer, *names: str) -> None:
    async with SeatClient(server.address, "5.2.0") as seat:
        for name in names:
            await seat.login(name)


async def test_logins_and_peaks_are_flushed_per_hour_and_survive_a_restart(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["alice", "bob", "carol"], enable=True)
    await _log_in(server, "alice", "bob", "nobody")
    assert server.app is not None
    await server.app.service.flush_usage()
    server.clock.advance(hours=1)
    await _log_in(server, "carol")
    await server.restart()  # a clean stop flushes what came since

    assert server.app is not None
    hours, _ = await server.app.service.usage_hours(START - timedelta(days=1))
    assert hours == [
        UsageHour(hour_of(START), 3, 2, None, 2, {("USER_UNKNOWN", 5): 1}),
        # An hour later alice's and bob's sessions have ended (no heartbeats): carol's.
        UsageHour(hour_of(START) + timedelta(hours=1), 3, 1, None, 1),
    ]


async def test_hours_older_than_two_years_are_deleted_at_a_flush(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["alice"], enable=True)
    await _log_in(server, "alice")
    assert server.app is not None
    service = server.app.service
    await service.flush_usage()
    server.clock.advance(days=365)
    await service.flush_usage()
    server.clock.advance(days=367)  # the first hour is now more than 731 days back
    await service.flush_usage()
    hours, _ = await service.usage_hours(START - timedelta(days=1))
    assert [h.hour for h in hours] == [
        hour_of(START + timedelta(days=365)),
        hour_of(START + timedelta(days=732)),
    ]


async def _ten_days_of_growth(server: RunningServer, admin: AdminClient) -> None:
    """20 seats bought; 6 users enabled on the first day and one more each day after, for
    ten days (15 today), with a few logins refused; flushed daily."""
    await admin.install_license(server.vendor.issue(20))
    names = [f"user{i:02d}" for i in range(20)]
    await admin.add_users(names, enable=False)
    await admin.enable_users(names[:5])
    assert server.app is not None
    async with grpc.aio.insecure_channel(server.address) as channel:
        v3 = LegacyClient("v3", channel)
        for day in range(10):
            if day:
                server.clock.advance(days=1)
            await admin.enable_users([names[5 + day]])
            await _log_in(server, names[0], names[1], "nobody")
            await v3.Login(user_name=names[19])  # disabled
            await server.app.service.flush_usage()


async def test_usage_shows_daily_peaks_denials_busiest_hour_and_the_forecast(
    server: RunningServer, admin: AdminClient
) -> None:
    await _ten_days_of_growth(server, admin)
    code, out, err = await admin_cli(server, "usage", "--days", "3")
    assert code == 0, err
    first = (START + timedelta(days=7)).date()
    assert out.splitlines()[0] == (
        f"Usage from {first} to {first + timedelta(days=2)} (UTC days; 3 days, 3 with data)."
    )
    table = [line.split() for line in out.splitlines()[2:6]]
    assert table == [
        ["DATE", "PEAK", "ENABLED", "PEAK", "SESSIONS", "SEATS", "GRANTED", "DENIED"],
        [str(first), "13", "2", "20", "2", "2"],
        [str(first + timedelta(days=1)), "14", "2", "20", "2", "2"],
        [str(first + timedelta(days=2)), "15", "2", "20", "2", "2"],
    ]
    assert "  USER_DISABLED  3       3.x: 3" in out
    assert "  USER_UNKNOWN   3       5.x: 3" in out
    assert f"Busiest hour: {first} 09:00 UTC, 2 live sessions, 13 enabled users, 4 logins." in out
    # 15 enabled today, one more a day: the 20 seats are taken in five days.
    runs_out = (START + timedelta(days=14)).date()
    assert out.rstrip().endswith(
        "Forecast: at the growth of the last 30 days (+1.00 enabled users a day), the 20 "
        f"seats run out around {runs_out}."
    )

    code, out, err = await admin_cli(server, "usage", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["format"], document["version"]) == ("officestatus-admin", 1)
    assert len(document["days"]) == 10
    assert document["days"][-1] == {
        "date": str(first + timedelta(days=2)),
        "peak_enabled_users": 15,
        "peak_live_sessions": 2,
        "seats": 20,
        "logins_granted": 2,
        "logins_denied": 2,
        "hours_recorded": 1,
    }
    assert document["denials"] == [
        {"reason": "USER_DISABLED", "client_release": 3, "count": 10},
        {"reason": "USER_UNKNOWN", "client_release": 5, "count": 10},
    ]
    assert document["forecast"]["outlook"] == "runs_out"
    assert document["forecast"]["runs_out_on"] == str(runs_out)
    assert document["flush_seconds"] == 60


async def test_usage_of_a_new_server_says_what_a_forecast_needs(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users(["alice"], enable=True)
    await _log_in(server, "alice")
    code, out, err = await admin_cli(server, "usage")
    assert code == 0, err
    lines = out.splitlines()
    # Not written down yet: the login of this minute is shown all the same.
    assert lines[3].split() == [str(START.date()), "1", "1", "no", "limit", "1", "0"]
    assert "No login was denied." in out
    assert lines[-1] == "Forecast: none during the evaluation, which has no seat limit."

    code, out, err = await admin_cli(server, "usage", "--days", "0")
    assert code != 0
    assert "--days" in err
    code, out, err = await admin_cli(server, "usage", "--days", "1000")
    assert code != 0
    assert "Ask for 1 to 731 days of usage (the history keeps two years), not 1000." in err
