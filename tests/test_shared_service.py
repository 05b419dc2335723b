"""Several license services over one database: each change is planned on the state as
stored, under the installation's lock, whatever the others' memory held.

Here over one SQLite file opened twice (a real file, two stores); the same over
PostgreSQL, with the changes heard as they happen, is in tests/test_several_servers.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from officestatus_server.core.versions import Release
from officestatus_server.errors import SeatsExhausted
from officestatus_server.service import LicenseService
from officestatus_server.storage.base import Store
from officestatus_server.storage.sqlite import SqliteStore
from tests.support import FakeClock, Vendor


@pytest.fixture
async def two(tmp_path: Path, vendor: Vendor) -> AsyncIterator[tuple[LicenseService, ...]]:
    """Two started services over one database, the first one made it."""
    clock = FakeClock()

    def make(store: Store) -> LicenseService:
        return LicenseService(store, vendor.trust, clock, monotonic=clock.monotonic)

    new: Callable[[], Store] = lambda: SqliteStore(tmp_path / "officestatus.db")  # noqa: E731
    a = make(new())
    await a.start()
    b = make(new())
    await b.start()
    yield a, b
    await b.close()
    await a.close()


async def test_a_second_service_joins_the_installation(two: tuple[LicenseService, ...]) -> None:
    a, b = two
    assert a.registry.installation == b.registry.installation


async def test_the_seat_rule_holds_against_a_service_whose_memory_is_behind(
    two: tuple[LicenseService, ...], vendor: Vendor
) -> None:
    a, b = two
    await a.install_license(vendor.issue(3))
    await a.add_users(["ann", "bob", "cat", "dan"], enable=False)
    await a.enable_users(["ann", "bob"])
    # B has heard nothing (SQLite tells no one): its memory holds no license, no users.
    assert b.registry.enabled_count() == 0
    await b.enable_users(["cat"])
    assert b.registry.enabled_count() == 3
    with pytest.raises(SeatsExhausted, match="3 of 3 seats in use"):
        await a.enable_users(["dan"])
    assert [u.name for u in a.users() if u.enabled] == ["ann", "bob", "cat"]


async def test_a_service_catches_up_when_asked(
    two: tuple[LicenseService, ...], vendor: Vendor
) -> None:
    a, b = two
    await a.install_license(vendor.issue(5))
    await a.add_users(["ann"], enable=True)
    assert not b.login("ann", Release.V6).decision.granted
    assert await b.catch_up() is True
    assert b.login("ann", Release.V6).decision.granted
    assert await b.catch_up() is False


async def test_a_service_catches_up_on_what_changed_and_matches_a_fresh_start(
    two: tuple[LicenseService, ...], vendor: Vendor, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = two
    await a.install_license(vendor.issue(5))
    await a.add_users(["ann", "bob", "cat"], enable=False)
    assert await b.catch_up()
    await a.enable_users(["ann", "cat"])
    await a.remove_users(["bob"], force=False)
    with caplog.at_level("INFO", logger="officestatus.service"):
        assert await b.catch_up()
    assert "3 users read again" in caplog.text  # not everything: those the changes touched
    assert b.registry.users == a.registry.users
    assert b.registry.enabled_count() == 2
    assert b.login("ann", Release.V6).decision.granted
    assert not b.login("bob", Release.V6).decision.granted
    # A license installed elsewhere is verified here too.
    await a.install_license(vendor.issue(3))
    with caplog.at_level("INFO", logger="officestatus.service"):
        assert await b.catch_up()
    assert "and the licenses" in caplog.text
    assert b.registry.seats == a.registry.seats == 8


async def test_a_service_too_far_behind_reads_everything_again(
    tmp_path: Path,
    two: tuple[LicenseService, ...],
    vendor: Vendor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = two
    a._store.changes_kept = 2
    await a.install_license(vendor.issue(5))
    await a.add_users(["ann", "bob", "cat"], enable=True)
    await a.disable_users(["bob"])
    with caplog.at_level("INFO", logger="officestatus.service"):
        assert await b.catch_up()
    assert "everything read again" in caplog.text
    assert b.registry.users == a.registry.users
    assert b.registry.seats == 5


async def test_the_clocks_high_water_mark_is_the_installations(
    tmp_path: Path, vendor: Vendor
) -> None:
    """A's clock has seen ten days later than B's: B, behind it by more than the
    tolerance once it has heard of A's change, finds its clock set back."""
    clock_a, clock_b = FakeClock(), FakeClock()
    a = LicenseService(SqliteStore(tmp_path / "os.db"), vendor.trust, clock_a)
    b = LicenseService(SqliteStore(tmp_path / "os.db"), vendor.trust, clock_b)
    await a.start()
    await b.start()
    try:
        clock_a.jump(days=10)
        await a.add_users(["ann"], enable=True)
        b.login("ann", Release.V6)
        assert b.registry.installation.clock_set_back is None  # not heard of it yet
        assert await b.catch_up()
        b.login("ann", Release.V6)
        found = b.registry.installation.clock_set_back
        assert found is not None
        assert found.seen == clock_a.now
    finally:
        await b.close()
        await a.close()
