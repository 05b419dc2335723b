"""Shared fixtures: a vendor, a clock, and a real running server."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from officestatus_client import AdminClient
from scripts.postgres import PostgresCluster
from tests.support import FakeClock, RunningServer, Vendor


@pytest.fixture(autouse=True)
def no_old_installation_at_the_default_location(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Servers started by the tests never look at the old releases' real default
    location (/var/lib/officestatus): what is there on this machine is not the test's."""
    empty = tmp_path_factory.mktemp("no-old-server")
    monkeypatch.setenv("OFFICESTATUS_LEGACY_DATA_DIR", str(empty))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One real PostgreSQL server for the whole test run (started when a test first asks
    for it, stopped and removed at the end). Its directory is not under pytest's: that
    one is the test user's alone, and PostgreSQL runs as `postgres` when the tests run as
    root."""
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="officestatus-pg-")))
    cluster.init()
    asyncio.run(cluster.start())
    try:
        yield cluster
    finally:
        asyncio.run(cluster.close())


@pytest.fixture
async def pg_url(pg_cluster: PostgresCluster) -> str:
    """A new, empty database of its own for one test; its URL. A test that stopped the
    server has it started again."""
    return await pg_cluster.create_database()


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
