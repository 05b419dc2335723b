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
