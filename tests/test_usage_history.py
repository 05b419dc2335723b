"""The usage history of a real server: logins counted per hour, flushed to the database,
kept for two years and no longer."""

from __future__ import annotations

from datetime import timedelta

from officestatus_client import AdminClient, SeatClient
from officestatus_server.core.usage import UsageHour, hour_of
from tests.support import START, RunningServer


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
