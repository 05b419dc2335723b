"""What only the PostgreSQL store does, against a real PostgreSQL (the rest is the Store
contract, tests/test_store_contract.py): its schema made and migrated one numbered
migration at a time, a newer one refused untouched, and the sessions of a server that is
gone not kept for ever."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from officestatus_server.core.sessions import SessionFlush
from officestatus_server.errors import PreconditionFailed
from officestatus_server.storage.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def _sql(url: str, *statements: str) -> list[asyncpg.Record]:
    """Run statements on a connection of its own; the rows of the last."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows: list[asyncpg.Record] = []
        for statement in statements:
            rows = await conn.fetch(statement)
        return rows
    finally:
        await conn.close()


async def _version(url: str) -> int:
    return int((await _sql(url, "SELECT version FROM schema_version"))[0][0])


async def test_an_empty_database_gets_the_whole_schema(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    stored = await store.open(NOW)
    await store.close()
    assert stored.created
    assert await _version(pg_url) == SCHEMA_VERSION == len(MIGRATIONS)
    tables = {
        r[0]
        for r in await _sql(
            pg_url, "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
        )
    }
    assert {"meta", "licenses", "users", "audit", "live_sessions", "session_runs"} <= tables


async def test_a_database_from_a_newer_server_is_refused_untouched(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open(NOW)
    await store.close()
    await _sql(pg_url, f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    before = await _sql(pg_url, "SELECT key, value FROM meta ORDER BY key")
    newer = PostgresStore(pg_url)
    with pytest.raises(PreconditionFailed, match="newer server") as refused:
        await newer.open(NOW)
    assert refused.value.reason == "SCHEMA_TOO_NEW"
    assert await _version(pg_url) == SCHEMA_VERSION + 1
    assert await _sql(pg_url, "SELECT key, value FROM meta ORDER BY key") == before


async def test_an_older_schema_is_migrated_one_migration_at_a_time_keeping_its_rows(
    pg_url: str,
) -> None:
    # The database as the first release of this store left it: migration 1 only, and a
    # run's sessions written down.
    await _sql(
        pg_url,
        *MIGRATIONS[0],
        "UPDATE schema_version SET version = 1",
        "INSERT INTO meta (key, value) VALUES ('installation_id', 'inst-1'), "
        f"('first_started_at', '{NOW.isoformat()}'), ('session_secret', '{'ab' * 32}'), "
        "('change_number', '0')",
        "INSERT INTO session_runs (run, flushed_epoch) VALUES ('old-run', 3)",
        "INSERT INTO live_sessions (session_id, holder, machine, client_version, since) "
        "VALUES ('s-1', 'old-run', 'PC-1', '5.2.0', 1.0)",
    )
    store = PostgresStore(pg_url)
    stored = await store.open(NOW)
    try:
        assert not stored.created
        assert stored.installation.installation_id == "inst-1"
        earlier = await store.sessions()
    finally:
        await store.close()
    assert await _version(pg_url) == SCHEMA_VERSION
    assert earlier.live == frozenset({"s-1"})
    assert earlier.flushed == {"old-run": 3}
    assert (await _sql(pg_url, "SELECT count(*) FROM session_runs WHERE flushed_at IS NULL"))[0][
        0
    ] == 0


def _flush(run: str, opened: tuple[str, ...]) -> SessionFlush:
    return SessionFlush(run=run, epoch=1, opened=opened, ended=(), forget_earlier=False)


async def test_the_sessions_of_a_server_gone_a_day_are_deleted_and_the_others_kept(
    pg_url: str,
) -> None:
    store = PostgresStore(pg_url)
    await store.open(NOW)
    try:
        await store.save_sessions(_flush("gone", ("g-1", "g-2")))
        await store.save_sessions(_flush("quiet", ("q-1",)))
        # "gone" last wrote two days ago, "quiet" twenty hours ago: only one is gone.
        await _sql(
            pg_url,
            "UPDATE session_runs SET flushed_at = now() - interval '2 days' WHERE run = 'gone'",
            "UPDATE session_runs SET flushed_at = now() - interval '20 hours' WHERE run = 'quiet'",
        )
        await store.save_sessions(_flush("alive", ("a-1",)))
        earlier = await store.sessions()
    finally:
        await store.close()
    assert earlier.live == frozenset({"q-1", "a-1"})
    assert set(earlier.flushed) == {"quiet", "alive"}
