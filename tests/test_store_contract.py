"""What any `Store` (storage/base.py) must do, whatever database it stands on.

Every test here goes through the protocol's methods only, on a store made by
`store_factory`: each call of the factory gives a new, unopened `Store` over the same
backing database, so "reopen" means a new object, opened again. A new implementation is
added to `IMPLEMENTATIONS` and must pass all of this; what only one implementation does
(its files, its schema versions, its journal) is tested beside it
(tests/test_storage_sqlite.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from officestatus_server.core.audit import GENESIS
from officestatus_server.core.model import (
    AuditEntry,
    Change,
    ClockSetBack,
    InstalledLicense,
    User,
)
from officestatus_server.core.names import name_key
from officestatus_server.core.sessions import Seen, SessionFlush
from officestatus_server.core.signed_in import LastLogin, LastLoginFlush
from officestatus_server.core.usage import UsageHour
from officestatus_server.errors import PreconditionFailed, SeatsExhausted, StorageError
from officestatus_server.storage.base import TABLE_ORDER, Store
from officestatus_server.storage.postgres import PostgresStore
from officestatus_server.storage.sqlite import SqliteStore

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)

StoreFactory = Callable[[], Store]


def _sqlite(request: pytest.FixtureRequest) -> StoreFactory:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return lambda: SqliteStore(tmp_path / "os.db")


def _postgres(request: pytest.FixtureRequest) -> StoreFactory:
    url: str = request.getfixturevalue("pg_url")
    return lambda: PostgresStore(url)


# Each: (id, a function of the test's request giving the factory).
IMPLEMENTATIONS: list[tuple[str, Callable[[pytest.FixtureRequest], StoreFactory]]] = [
    ("sqlite", _sqlite),
    ("postgres", _postgres),
]


@pytest.fixture(params=[make for _, make in IMPLEMENTATIONS], ids=[n for n, _ in IMPLEMENTATIONS])
def store_factory(request: pytest.FixtureRequest) -> StoreFactory:
    """New, unopened stores over one fresh, empty database."""
    make: Callable[[pytest.FixtureRequest], StoreFactory] = request.param
    return make(request)


def _lic(license_id: str) -> InstalledLicense:
    return InstalledLicense(license_id, f"OSLK1.{license_id}.sig", NOW, None)


def _audit(action: str) -> AuditEntry:
    return AuditEntry(NOW, action, "subject", "result")


async def _store_with_audit(store_factory: StoreFactory, n: int) -> Store:
    store = store_factory()
    await store.open(NOW)
    for i in range(n):
        await store.commit(Change(audit=_audit(f"action-{i}")))
    return store


# --- open -------------------------------------------------------------------------------


async def test_an_empty_store_opens_as_a_new_installation(store_factory: StoreFactory) -> None:
    store = store_factory()
    stored = await store.open(NOW)
    audit = await store.audit(10)
    report = await store.verify_audit()
    earlier = await store.sessions()
    await store.close()
    assert stored.created
    assert stored.installation.installation_id
    assert stored.installation.first_started_at == NOW
    assert stored.installation.evaluation_ended_at is None
    assert stored.installation.clock_set_back is None
    assert stored.licenses == ()
    assert stored.users == ()
    assert stored.clock_high_water == NOW
    assert audit == []
    assert report.intact
    assert report.records_checked == 0
    assert not earlier.live
    assert not earlier.flushed
    assert earlier.unrecorded


async def test_first_open_creates_the_installation_and_later_opens_keep_it(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    first = await store.open(NOW)
    await store.close()
    assert first.created
    assert first.installation.first_started_at == NOW
    assert len(first.session_secret) == 32

    store = store_factory()
    later = await store.open(datetime(2027, 1, 1, tzinfo=UTC))
    await store.close()
    assert not later.created
    assert later.installation == first.installation
    assert later.session_secret == first.session_secret


# --- changes ----------------------------------------------------------------------------


async def test_a_commit_is_written_whole_and_read_back(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open(NOW)
    ann = User("Ann", True, NOW, NOW, 1)
    await store.commit(
        Change(
            audit=_audit("one"),
            add_licenses=(_lic("L-1"), _lic("L-2")),
            put_users=(ann, User("bo", False, NOW)),
            evaluation_ended_at=NOW,
        )
    )
    await store.commit(
        Change(audit=_audit("two"), remove_licenses=("L-1",), put_users=(User("ANN", False, NOW),))
    )
    await store.close()

    store = store_factory()
    stored = await store.open(NOW)
    audit = await store.audit(10)
    await store.close()
    assert [lic.license_id for lic in stored.licenses] == ["L-2"]
    assert sorted((u.name, u.enabled) for u in stored.users) == [("ANN", False), ("bo", False)]
    assert stored.installation.evaluation_ended_at == NOW
    assert [a.entry.action for a in audit] == ["two", "one"]


async def test_removed_users_are_gone_whatever_the_case_of_their_name(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    ann, bo = User("Ann", True, NOW, NOW, 1), User("bo", False, NOW)
    await store.commit(Change(audit=_audit("add"), put_users=(ann, bo, User("cy", False, NOW))))
    await store.commit(Change(audit=_audit("remove"), remove_users=("ANN", "cy")))
    await store.close()

    store = store_factory()
    stored = await store.open(NOW)
    audit = await store.audit(10)
    await store.close()
    assert stored.users == (bo,)
    assert [a.entry.action for a in audit] == ["remove", "add"]


async def test_stored_licenses_and_users_are_read_back_as_written(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    ann = User("Ann", True, NOW, LATER, 7)
    await store.commit(Change(audit=_audit("one"), add_licenses=(_lic("L-1"),), put_users=(ann,)))
    await store.close()

    store = store_factory()
    stored = await store.open(LATER)
    await store.close()
    (lic,) = stored.licenses
    assert (lic.license_id, lic.key_text, lic.installed_at) == ("L-1", "OSLK1.L-1.sig", NOW)
    assert stored.users == (ann,)


async def test_every_user_is_read_back_as_written(store_factory: StoreFactory) -> None:
    users = (
        User("Ann", True, NOW, LATER, 1),
        User("bo", False, NOW),
        User("Émile", True, LATER, LATER, 2),
    )
    store = store_factory()
    await store.open(NOW)
    await store.commit(Change(audit=_audit("add"), put_users=users))
    await store.close()

    store = store_factory()
    stored = await store.open(LATER)
    await store.close()
    assert sorted(stored.users) == sorted(users)


async def test_a_user_is_kept_under_the_name_key_beyond_ascii(
    store_factory: StoreFactory,
) -> None:
    assert name_key("Zoë") == name_key("ZOË")  # one user, as the core sees it
    store = store_factory()
    await store.open(NOW)
    await store.commit(Change(audit=None, put_users=(User("Zoë", True, NOW, NOW, 1),)))
    await store.commit(Change(audit=None, put_users=(User("ZOË", False, NOW),)))
    await store.close()

    store = store_factory()
    stored = await store.open(NOW)
    await store.close()
    assert stored.users == (User("ZOË", False, NOW),)


async def test_a_failing_change_leaves_nothing_behind(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.commit(Change(audit=_audit("first"), add_licenses=(_lic("L-1"),)))
    broken = Change(
        audit=_audit("broken"),
        put_users=(User("new", True, NOW, NOW, 7),),
        add_licenses=(_lic("L-1"),),  # the same license id again: refused
    )
    with pytest.raises(StorageError) as failed:
        await store.commit(broken)
    assert failed.value.reason == "STORAGE_WRITE_FAILED"
    assert [a.entry.action for a in await store.audit(10)] == ["first"]
    assert (await store.verify_audit()).intact
    await store.close()

    store = store_factory()
    stored = await store.open(NOW)
    await store.close()
    assert stored.users == ()
    assert [lic.license_id for lic in stored.licenses] == ["L-1"]


async def test_the_servers_bookkeeping_writes_no_audit_record(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.commit(Change(audit=None, clock_high_water=LATER))
    assert await store.audit(10) == []
    await store.close()


# --- settings ---------------------------------------------------------------------------


async def test_the_clocks_high_water_mark_only_rises(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.commit(Change(audit=None, clock_high_water=LATER))
    await store.commit(Change(audit=None, clock_high_water=NOW + timedelta(days=1)))
    await store.close()

    store = store_factory()
    stored = await store.open(NOW)
    await store.close()
    assert stored.clock_high_water == LATER


async def test_the_evaluation_end_and_the_clock_set_back_are_written_once(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    first = ClockSetBack(seen=LATER, found=NOW)
    await store.commit(Change(audit=_audit("one"), evaluation_ended_at=NOW, clock_set_back=first))
    await store.commit(
        Change(
            audit=_audit("two"),
            evaluation_ended_at=LATER,
            clock_set_back=ClockSetBack(seen=LATER + timedelta(days=1), found=LATER),
        )
    )
    await store.close()

    store = store_factory()
    stored = await store.open(LATER)
    await store.close()
    assert stored.installation.evaluation_ended_at == NOW
    assert stored.installation.clock_set_back == first


# --- the audit log ----------------------------------------------------------------------


async def test_an_untouched_audit_chain_verifies(store_factory: StoreFactory) -> None:
    store = await _store_with_audit(store_factory, 5)
    report = await store.verify_audit()
    records = await store.audit(10)
    await store.close()
    assert report.intact
    assert report.records_checked == 5
    assert report.head_hash == records[0].hash
    assert records[0].previous_hash == records[1].hash


async def test_the_audit_is_newest_first_limited_and_kept(store_factory: StoreFactory) -> None:
    store = await _store_with_audit(store_factory, 5)
    newest = await store.audit(2)
    await store.close()
    assert [r.entry.action for r in newest] == ["action-4", "action-3"]
    assert newest[0].entry == _audit("action-4")

    store = store_factory()
    await store.open(LATER)
    records = await store.audit(10)
    await store.commit(Change(audit=_audit("after a restart")))
    report = await store.verify_audit()
    await store.close()
    assert [r.entry.action for r in records] == [f"action-{i}" for i in range(4, -1, -1)]
    assert all(a.previous_hash == b.hash for a, b in itertools.pairwise(records))
    assert report.intact
    assert report.records_checked == 6


async def test_the_audit_chain_starts_at_genesis_and_runs_in_order(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    empty = await store.verify_audit()
    for i in range(3):
        await store.commit(Change(audit=_audit(f"action-{i}")))
    records = await store.audit(10)
    await store.close()
    assert empty.head_hash == GENESIS
    assert records[-1].previous_hash == GENESIS
    assert all(a.id > b.id for a, b in itertools.pairwise(records))


# --- sessions ---------------------------------------------------------------------------


async def test_sessions_written_down_are_read_back_after_a_reopen(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.save_sessions(SessionFlush("run-a", 1, ("s1", "s2", "s3"), (), False))
    await store.save_sessions(SessionFlush("run-a", 2, ("s4",), ("s2",), False))
    await store.close()

    store = store_factory()
    await store.open(NOW)
    earlier = await store.sessions()
    await store.close()
    assert earlier.live == frozenset({"s1", "s3", "s4"})
    assert dict(earlier.flushed) == {"run-a": 2}
    assert not earlier.unrecorded


async def test_a_new_run_can_forget_the_earlier_runs_sessions(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.save_sessions(SessionFlush("run-a", 1, ("a1", "a2"), (), False))
    await store.save_sessions(SessionFlush("run-b", 1, ("b1",), (), False))
    assert dict((await store.sessions()).flushed) == {"run-a": 1, "run-b": 1}
    await store.save_sessions(SessionFlush("run-c", 3, ("c1",), (), True))
    earlier = await store.sessions()
    await store.close()
    assert earlier.live == frozenset({"c1"})
    assert dict(earlier.flushed) == {"run-c": 3}


async def test_a_session_the_new_run_took_over_survives_forgetting_the_earlier_runs(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.save_sessions(SessionFlush("run-a", 3, ("a1", "a2"), (), False))
    await store.close()

    store = store_factory()
    await store.open(NOW)
    # run-b resumes a1 (writing it down as its own): a2 is no longer resumable.
    await store.save_sessions(SessionFlush("run-b", 1, ("b1", "a1"), (), True))
    earlier = await store.sessions()
    await store.close()
    assert earlier.live == frozenset({"a1", "b1"})
    assert dict(earlier.flushed) == {"run-b": 1}


async def test_where_and_since_when_live_sessions_signed_in_is_read_back(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    seen = Seen("PC-A", "5.1.3", NOW.timestamp())
    await store.save_sessions(SessionFlush("run-a", 1, ("s1", "s2"), (), False, {"s1": seen}))
    await store.close()

    store = store_factory()
    await store.open(NOW)
    earlier = await store.sessions()
    await store.close()
    assert earlier.live == frozenset({"s1", "s2"})
    # s2's sign-in was not recorded: nothing is made up for it.
    assert dict(earlier.seen) == {"s1": seen}


# --- last logins (3.x, 4.x) -------------------------------------------------------------


def _login(user: str, machine: str, at: datetime, version: str = "4.2.0") -> LastLogin:
    return LastLogin(name_key(user), user, machine, version, int(version[0]), at)


async def test_last_logins_written_down_are_read_back_oldest_first(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    assert await store.last_logins() == ()
    first = (_login("Ann", "PC-1", LATER), _login("bob", "", NOW, "3.4.2"))
    await store.save_last_logins(LastLoginFlush(first, ()))
    # Ann again from PC-1 (replacing the entry), from PC-2, and bob's entry forgotten.
    again = (_login("Ann", "PC-1", LATER + timedelta(hours=1)), _login("Ann", "PC-2", LATER))
    await store.save_last_logins(LastLoginFlush(again, ((name_key("bob"), ""),)))
    await store.close()

    store = store_factory()
    await store.open(NOW)
    kept = await store.last_logins()
    await store.close()
    assert kept == (again[1], again[0])


async def test_an_empty_batch_of_last_logins_changes_nothing(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.save_last_logins(LastLoginFlush((_login("ann", "PC-1", NOW),), ()))
    await store.save_last_logins(LastLoginFlush((), ()))
    kept = await store.last_logins()
    await store.close()
    assert kept == (_login("ann", "PC-1", NOW),)


# --- checkpoint, close, backup ----------------------------------------------------------


async def test_a_checkpoint_keeps_everything_and_the_store_serves_on(
    store_factory: StoreFactory,
) -> None:
    store = await _store_with_audit(store_factory, 2)
    await store.checkpoint()
    await store.commit(Change(audit=_audit("after the checkpoint"), add_licenses=(_lic("L-1"),)))
    await store.checkpoint()
    await store.close()

    store = store_factory()
    stored = await store.open(NOW)
    report = await store.verify_audit()
    await store.close()
    assert [lic.license_id for lic in stored.licenses] == ["L-1"]
    assert report.records_checked == 3


async def test_a_closed_store_refuses_to_write(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.close()
    with pytest.raises(StorageError) as refused:
        await store.commit(Change(audit=_audit("too late")))
    assert refused.value.reason == "STORAGE_CLOSED"
    with pytest.raises(StorageError):
        await store.save_sessions(SessionFlush("run-a", 1, ("s1",), (), False))

    store = store_factory()
    await store.open(NOW)
    assert await store.audit(10) == []
    await store.close()


async def test_a_backup_never_overwrites_a_file(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    target = tmp_path / "backup.db"
    target.write_bytes(b"someone else's file")
    store = await _store_with_audit(store_factory, 1)
    # SQLite: the file exists; PostgreSQL: pg_dump backs it up, never this command.
    with pytest.raises((FileExistsError, PreconditionFailed)):
        await store.backup(target)
    await store.commit(Change(audit=_audit("after")))  # the store serves on
    records = await store.audit(10)
    await store.close()
    assert target.read_bytes() == b"someone else's file"
    assert len(records) == 2


# --- the usage history ------------------------------------------------------------------


async def test_usage_hours_merge_into_those_stored_and_survive_a_reopen(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    assert await store.usage(NOW - timedelta(days=1)) == []
    early = NOW - timedelta(hours=1)
    await store.save_usage(
        [
            UsageHour(early, 3, 1, 10, 5, {("OVER_CAPACITY", 5): 2}),
            UsageHour(NOW, 4, 2, None, 1),
        ],
        NOW - timedelta(days=30),
    )
    # A later batch of the same hour: peaks by the larger, seats by the later, counts added.
    await store.save_usage(
        [UsageHour(early, 2, 6, 12, 3, {("OVER_CAPACITY", 5): 1, ("USER_UNKNOWN", 3): 4})],
        NOW - timedelta(days=30),
    )
    await store.close()

    store = store_factory()
    await store.open(LATER)
    hours = await store.usage(NOW - timedelta(days=1))
    only_now = await store.usage(NOW)
    await store.close()
    assert hours == [
        UsageHour(early, 3, 6, 12, 8, {("OVER_CAPACITY", 5): 3, ("USER_UNKNOWN", 3): 4}),
        UsageHour(NOW, 4, 2, None, 1),
    ]
    assert only_now == [UsageHour(NOW, 4, 2, None, 1)]


async def test_saving_usage_deletes_the_hours_before_those_kept(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    await store.open(NOW)
    old = [
        UsageHour(NOW - timedelta(hours=h), 1, 0, 5, 1, {("NOT_LICENSED", 6): 1}) for h in range(48)
    ]
    await store.save_usage(old, NOW - timedelta(days=30))
    await store.save_usage([UsageHour(NOW, 2, 0, 5, 1)], NOW - timedelta(hours=23))
    hours = await store.usage(NOW - timedelta(days=30))
    await store.close()
    assert [h.hour for h in hours] == [NOW - timedelta(hours=h) for h in range(23, -1, -1)]
    assert hours[-1] == UsageHour(NOW, 2, 0, 5, 2, {("NOT_LICENSED", 6): 1})


async def test_closing_twice_is_harmless(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.close()
    await store.close()


async def _refuses_every_call(store: Store) -> None:
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "commit": lambda: store.commit(Change(audit=_audit("too late"))),
        "sessions": store.sessions,
        "save_sessions": lambda: store.save_sessions(SessionFlush("run", 1, ("s",), (), False)),
        "last_logins": store.last_logins,
        "save_last_logins": lambda: store.save_last_logins(LastLoginFlush((), ())),
        "save_usage": lambda: store.save_usage([UsageHour(NOW)], NOW),
        "usage": lambda: store.usage(NOW),
        "audit": lambda: store.audit(10),
        "verify_audit": store.verify_audit,
        "checkpoint": store.checkpoint,
    }
    for name, call in calls.items():
        with pytest.raises(StorageError) as refused:
            await call()
        assert refused.value.reason == "STORAGE_CLOSED", name


async def test_a_store_not_open_refuses_every_call_and_writes_nothing(
    store_factory: StoreFactory,
) -> None:
    await _refuses_every_call(store_factory())  # never opened
    closed = store_factory()
    await closed.open(NOW)
    await closed.close()
    await _refuses_every_call(closed)

    store = store_factory()
    stored = await store.open(NOW)
    audit = await store.audit(10)
    earlier = await store.sessions()
    await store.close()
    assert not stored.created
    assert audit == []
    assert earlier.unrecorded


# --- change numbers, the installation's lock, several stores over one database ----------


async def test_every_change_but_the_clocks_mark_alone_takes_the_next_number(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    assert (await store.open(NOW)).change_number == 0
    assert await store.commit(Change(audit=_audit("user.add"))) == 1
    assert await store.commit(Change(audit=None, clock_high_water=LATER)) == 1
    assert await store.commit(Change(audit=None, put_users=(User("ann", False, NOW),))) == 2
    assert await store.change_number() == 2
    await store.close()
    reopened = store_factory()
    assert (await reopened.open(LATER)).change_number == 2
    assert (await reopened.load()).change_number == 2
    await reopened.close()


async def test_a_change_block_that_raises_writes_nothing(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open(NOW)

    async def refused_after_a_write() -> None:
        async with store.change() as tx:
            await tx.write(Change(audit=_audit("user.add"), put_users=(User("ann", True, NOW),)))
            raise SeatsExhausted("1 of 1 seats in use")

    with pytest.raises(SeatsExhausted):
        await refused_after_a_write()
    assert await store.change_number() == 0
    assert (await store.load()).users == ()
    assert await store.audit(10) == []
    await store.close()


async def test_a_change_through_another_store_shows_under_the_lock(
    store_factory: StoreFactory,
) -> None:
    first, second = store_factory(), store_factory()
    await first.open(NOW)
    await second.open(NOW)
    await first.commit(Change(audit=_audit("user.add"), put_users=(User("ann", True, NOW),)))
    async with second.change() as tx:
        assert tx.number == 1
        assert [u.name for u in (await tx.load()).users] == ["ann"]
        assert await tx.write(Change(audit=_audit("user.add"))) == 2
    assert await first.change_number() == 2
    assert (await first.verify_audit()).intact
    await second.close()
    await first.close()


async def test_a_delta_brings_what_the_changes_since_a_number_did(
    store_factory: StoreFactory,
) -> None:
    first, second = store_factory(), store_factory()
    await first.open(NOW)
    await second.open(NOW)
    ann, bob, cat = (User(n, False, NOW) for n in ("Ann", "bob", "cat"))
    await first.commit(Change(audit=_audit("users.add"), put_users=(ann, bob, cat)))
    since = await first.change_number()
    assert (await second.delta(since)) == (await first.delta(since))
    nothing = await second.delta(since)
    assert nothing is not None
    assert (nothing.number, nothing.users, nothing.removed_user_keys) == (since, (), ())
    assert nothing.licenses is None
    # Through the other store: Ann enabled, bob removed, the evaluation ended.
    enabled = User("Ann", True, NOW, LATER, 1)
    await second.commit(Change(audit=_audit("users.enable"), put_users=(enabled,)))
    await second.commit(Change(audit=_audit("users.remove"), remove_users=("BOB",)))
    await second.commit(Change(audit=_audit("evaluation.end"), evaluation_ended_at=LATER))
    delta = await first.delta(since)
    assert delta is not None
    assert delta.number == since + 3 == await first.change_number()
    assert delta.users == (enabled,)
    assert delta.removed_user_keys == (name_key("bob"),)
    assert delta.licenses is None
    assert delta.installation.evaluation_ended_at == LATER
    # A license installed: every license comes with the delta, in the order installed.
    await second.commit(
        Change(audit=_audit("license.install"), add_licenses=(_lic("L-2"), _lic("L-1")))
    )
    with_licenses = await first.delta(since + 3)
    assert with_licenses is not None
    assert [lic.license_id for lic in with_licenses.licenses or ()] == ["L-2", "L-1"]
    async with first.change() as tx:
        assert await tx.delta(since + 3) == with_licenses
    await second.close()
    await first.close()


async def test_a_delta_reaches_back_only_over_the_changes_kept(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    store.changes_kept = 3
    await store.open(NOW)
    for i in range(5):
        await store.commit(Change(audit=None, put_users=(User(f"u{i}", False, NOW),)))
    assert await store.delta(1) is None  # change 2 is no longer on record: read all
    assert await store.delta(9) is None  # a memory ahead of the database: read all
    kept = await store.delta(2)
    assert kept is not None
    assert [u.name for u in kept.users] == ["u2", "u3", "u4"]
    await store.close()


async def test_sessions_logged_out_are_read_back_for_a_day(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.end_sessions(["s2.old.x"], NOW)
    await store.end_sessions(["s2.new.y", "s2.new.z"], NOW + timedelta(days=1, hours=1))
    assert await store.ended_sessions(NOW) == {"s2.new.y", "s2.new.z"}
    await store.close()


async def test_an_installation_value_is_the_first_one_proposed(
    store_factory: StoreFactory,
) -> None:
    first, second = store_factory(), store_factory()
    await first.open(NOW)
    await second.open(NOW)
    assert await first.installation_value("admin_token", "token-of-a") == "token-of-a"
    assert await second.installation_value("admin_token", "token-of-b") == "token-of-a"
    await second.installation_value("vendor_key:k1", "key one")
    await first.installation_value("vendor_key:k2", "key two")
    assert await first.installation_values("vendor_key:") == {
        "vendor_key:k1": "key one",
        "vendor_key:k2": "key two",
    }
    await second.close()
    await first.close()


async def test_a_dump_holds_every_table_and_what_was_written(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open(NOW)
    await store.commit(
        Change(audit=_audit("license.install"), add_licenses=(_lic("L-2"), _lic("L-1")))
    )
    tables = await store.dump()
    assert tuple(tables) == TABLE_ORDER
    columns, rows = tables["licenses"]
    ids = [row[columns.index("license_id")] for row in rows]
    assert ids == ["L-2", "L-1"]  # in the order installed
    assert len(tables["audit"][1]) == 1
    assert tables == await store.dump()
    await store.close()
