"""The login tally: totals that only grow, and batches taken since the last flush."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from officestatus.wire import DenyReason
from officestatus_server.core.keys import TrustStore
from officestatus_server.core.tally import LoginKey, LoginTally
from officestatus_server.core.versions import Release
from officestatus_server.service import LicenseService
from officestatus_server.storage.sqlite import SqliteStore


def test_totals_count_every_login_by_reason_and_release() -> None:
    tally = LoginTally()
    tally.count(DenyReason.UNSPECIFIED, Release.V6)
    tally.count(DenyReason.UNSPECIFIED, Release.V6)
    tally.count(DenyReason.OVER_CAPACITY, Release.V3)
    assert tally.totals() == {
        LoginKey(DenyReason.UNSPECIFIED, Release.V6): 2,
        LoginKey(DenyReason.OVER_CAPACITY, Release.V3): 1,
    }
    assert LoginKey(DenyReason.UNSPECIFIED, Release.V6).granted
    assert not LoginKey(DenyReason.OVER_CAPACITY, Release.V3).granted


def test_take_since_last_gives_each_login_once_and_put_back_returns_it() -> None:
    tally = LoginTally()
    tally.count(DenyReason.USER_UNKNOWN, Release.V4)
    first = tally.take_since_last()
    assert first == {LoginKey(DenyReason.USER_UNKNOWN, Release.V4): 1}
    assert tally.take_since_last() == {}
    tally.count(DenyReason.USER_UNKNOWN, Release.V4)
    second = tally.take_since_last()
    tally.put_back(second)  # the batch could not be written
    assert tally.take_since_last() == {LoginKey(DenyReason.USER_UNKNOWN, Release.V4): 1}
    # The totals are never reduced by taking.
    assert tally.totals() == {LoginKey(DenyReason.USER_UNKNOWN, Release.V4): 2}


async def test_the_service_counts_each_login_it_decides(tmp_path: Path) -> None:
    service = LicenseService(
        SqliteStore(tmp_path / "officestatus.db"),
        TrustStore(),
        heartbeat_interval=timedelta(seconds=60),
    )
    await service.start()
    try:
        await service.add_users(["ann"], enable=True)
        service.login("ann", Release.V5)
        service.login("bob", Release.V3)
        assert service.tally.totals() == {
            LoginKey(DenyReason.UNSPECIFIED, Release.V5): 1,
            LoginKey(DenyReason.USER_UNKNOWN, Release.V3): 1,
        }
    finally:
        await service.close()
