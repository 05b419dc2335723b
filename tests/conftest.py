"""Shared fixtures: a vendor, a clock, and a real running server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from officestatus_client import AdminClient
from tests.support import FakeClock, RunningServer, Vendor


@pytest.fixture(autouse=True)
def no_old_installation_at_the_default_location(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Servers started by the tests never look at the old releases' real default
    location (/var/lib/officestatus): what is there on this machine is not the test's."""
    empty = tmp_path_factory.mktemp("no-old-server")
    monkeypatch.setenv("OFFICESTATUS_LEGACY_DATA_DIR", str(empty))


@pytest.fixture
def vendor() -> Vendor:
    """A vendor with a fresh signing key."""
    return Vendor()


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves."""
    return FakeClock()


@pytest.fixture
async def server(tmp_path: Path, vendor: Vendor, clock: FakeClock) -> AsyncIterator[RunningServer]:
    """A running server on a free port, trusting `vendor`, on a fresh SQLite file."""
    running = RunningServer(tmp_path / "data", vendor, clock)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def admin(server: RunningServer) -> AsyncIterator[AdminClient]:
    """The typed admin client, with the server's admin token."""
    async with AdminClient(server.address, server.token) as client:
        yield client


@pytest.fixture
async def metered(tmp_path: Path, vendor: Vendor, clock: FakeClock) -> AsyncIterator[RunningServer]:
    """A running server with the HTTP listener (/metrics) on a free port."""
    running = RunningServer(tmp_path / "data", vendor, clock)
    running.config = dataclasses.replace(running.config, http_listen="127.0.0.1:0")
    await running.start()
    yield running
    await running.stop()
