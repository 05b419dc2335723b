"""Many admins at once against one live server: the rules hold, and memory matches disk.

Eight typed admin clients, each on its own channel, fire random enables, disables,
adds, installs and removals (forced or not) at one in-process server, all at the same
time, round after round. Refusals are expected and fine. After each round, with every
client quiet, the state is checked through the admin API and, separately, in the SQLite
file read-only: seats are the sum of the counting licenses, enabled users fit the seats
unless a forced removal made room for excess, the server says what the database holds,
every successful change left exactly one audit row and no refusal left any, and the file
passes PRAGMA integrity_check.

Removals aim at licenses installed before the round and at those being installed in it,
and installs at new ids and at ids installed (or removed) before: a removal racing the
install of the same id is part of the mix, and its deterministic form has a test of its
own at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from officestatus_client import (
    AdminClient,
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionFailedError,
    SeatsExhaustedError,
    Status,
)
from officestatus_server.core.model import Change
from officestatus_server.storage.base import Transaction
from tests.support import RunningServer, Vendor

ROUNDS = 8
CLIENTS = 8
CALLS_PER_CLIENT = 5
POOL = [f"user{i:02d}" for i in range(24)]
REFUSALS = (
    InvalidArgumentError,
    NotFoundError,
    AlreadyExistsError,
    PreconditionFailedError,
    SeatsExhaustedError,
)
OPERATIONS = ["enable", "disable", "add", "install", "remove", "status"]
WEIGHTS = [6, 2, 3, 2, 3, 1]


@dataclass(frozen=True)
class Issued:
    """A key the vendor issued in this test: what it should count for."""

    seats: int
    major: int
    text: str


@dataclass
class Ledger:
    """What the clients did: every key issued, successes, and this round's forced removals."""

    keys: dict[str, Issued] = field(default_factory=dict)
    successes: int = 0
    forced_this_round: int = 0
    issued_this_round: list[str] = field(default_factory=list)
    added: set[str] = field(default_factory=set)  # pool names added by some call
    rounds_over_capacity: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Disk:
    """What the SQLite file holds, read read-only."""

    license_ids: list[str]
    users: dict[str, tuple[bool, int | None]]  # name -> (enabled, enable_seq)
    audit_rows: int
    evaluation_ended: bool
    integrity: str


def read_disk(path: Path) -> Disk:
    """The database as a separate read-only connection sees it (WAL: every commit)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        ids = [str(r[0]) for r in conn.execute("SELECT license_id FROM licenses ORDER BY rowid")]
        users = {
            str(name): (bool(enabled), None if seq is None else int(seq))
            for name, enabled, seq in conn.execute("SELECT name, enabled, enable_seq FROM users")
        }
        (audit_rows,) = conn.execute("SELECT count(*) FROM audit").fetchone()
        ended = conn.execute("SELECT 1 FROM meta WHERE key = 'evaluation_ended_at'").fetchone()
        integrity = "; ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check"))
    return Disk(ids, users, int(audit_rows), ended is not None, integrity)


def spelt(rng: random.Random, name: str) -> str:
    """A name as some admin types it: names compare regardless of case."""
    return rng.choice([name, name.upper(), name.capitalize()])


def check_status_adds_up(status: Status) -> None:
    """Any status, at any moment: its seats are the sum of its counting licenses."""
    assert status.seats_total == sum(c.seats for c in status.counting)
    assert status.seats_used == min(status.users_enabled, status.seats_total)


async def one_call(
    admin: AdminClient,
    rng: random.Random,
    vendor: Vendor,
    ledger: Ledger,
    installed: list[str],
) -> None:
    """One random admin call; a refusal is an outcome like any other."""
    op = rng.choices(OPERATIONS, WEIGHTS)[0]
    pending: Awaitable[Any]
    forced = False
    # Mostly users some call added already; now and then anyone, known or not.
    known = sorted(ledger.added) if ledger.added and rng.random() < 0.85 else POOL
    if op == "enable":
        names = [spelt(rng, n) for n in rng.sample(known, min(len(known), rng.randint(1, 3)))]
        pending = admin.enable_users(names)
    elif op == "disable":
        names = [spelt(rng, n) for n in rng.sample(known, 1)]
        pending = admin.disable_users(names)
    elif op == "add":
        bases = rng.sample(POOL, rng.randint(1, 3))
        pending = admin.add_users([spelt(rng, n) for n in bases], enable=rng.random() < 0.5)
    elif op == "install":
        kind = rng.random()
        if kind < 0.25:
            # Again: still installed (refused), or removed since (installed anew).
            text = ledger.keys[rng.choice([*installed, *ledger.keys])].text
        else:
            major = 6 if kind < 0.85 else rng.choice([5, 7])
            seats = rng.randint(1, 2)
            license_id = f"S-{len(ledger.keys):04d}"
            text = vendor.issue(seats, major=major, license_id=license_id)
            ledger.keys[license_id] = Issued(seats, major, text)
            ledger.issued_this_round.append(license_id)
        pending = admin.install_license(text)
    elif op == "remove":
        forced = rng.random() < 0.4
        # Installed before the round, or being installed by some other client right now.
        choices = [*installed, *ledger.issued_this_round[-3:], "S-NOT-THERE"]
        pending = admin.remove_license(rng.choice(choices), force=forced)
    else:
        pending = admin.status()
    try:
        reply = await pending
    except REFUSALS as refusal:
        ledger.outcomes[f"{op} refused: {refusal.reason}"] += 1
        return
    ledger.outcomes[f"{op} done"] += 1
    if op == "add":
        ledger.added.update(bases)
    status = reply if isinstance(reply, Status) else reply[1]
    check_status_adds_up(status)
    if op != "status":
        ledger.successes += 1
    if op == "remove" and forced:
        ledger.forced_this_round += 1


async def client_calls(
    admin: AdminClient,
    rng: random.Random,
    vendor: Vendor,
    ledger: Ledger,
    installed: list[str],
) -> None:
    """One client's calls in a round, one after another."""
    for _ in range(CALLS_PER_CLIENT):
        await one_call(admin, rng, vendor, ledger, installed)


async def check_round(
    admin: AdminClient, server: RunningServer, ledger: Ledger, before: Disk, round_no: int
) -> Disk:
    """The invariants, through the admin API and in the file; returns the file's state."""
    status = await admin.status()
    users = await admin.list_users()
    licenses = await admin.list_licenses()
    disk = read_disk(server.config.database_path)
    where = f"round {round_no}"

    assert disk.integrity == "ok", where
    assert disk.evaluation_ended, where
    assert not status.evaluation, where

    # Licenses: the server lists what the file holds; seats are the 6.x licenses' sum.
    assert [lic.license_id for lic in licenses] == disk.license_ids, where
    counting = [i for i in disk.license_ids if ledger.keys[i].major == 6]
    seats = sum(ledger.keys[i].seats for i in counting)
    assert [c.license_id for c in status.counting] == counting, where
    assert [lic.license_id for lic in licenses if lic.counts] == counting, where
    assert status.seats_total == seats == sum(lic.seats for lic in licenses if lic.counts), where
    check_status_adds_up(status)

    # Users: the server lists what the file holds, over capacity in enable order.
    assert {u.name: u.enabled for u in users} == {n: e for n, (e, _) in disk.users.items()}
    enabled = sorted(
        (seq, name) for name, (on, seq) in disk.users.items() if on and seq is not None
    )
    assert len(enabled) == sum(on for on, _ in disk.users.values()), f"{where}: seq missing"
    assert all(seq is None for on, seq in disk.users.values() if not on), where
    assert status.users_enabled == len(enabled), where
    over = [name for _, name in enabled[seats:]] if seats else []
    assert list(status.over_capacity) == over, where
    assert {u.name for u in users if u.over_capacity} == set(over), where
    ledger.rounds_over_capacity += bool(over)

    # Seats hold, unless a forced removal this round made room for excess (or excess left
    # by an earlier one is still shrinking: enabling never adds to it).
    previous_enabled = sum(on for on, _ in before.users.values())
    previous_seats = sum(
        ledger.keys[i].seats for i in before.license_ids if ledger.keys[i].major == 6
    )
    if len(enabled) > seats and not ledger.forced_this_round:
        said = (
            f"{where}: {len(enabled)} enabled on {seats} seats with no forced removal "
            f"(before the round: {previous_enabled} on {previous_seats})"
        )
        assert previous_enabled > previous_seats, said
        assert len(enabled) <= previous_enabled, said

    # Every change left one audit row; no refusal left any.
    assert disk.audit_rows - before.audit_rows == ledger.successes, where
    return disk


async def test_eight_admins_racing_keep_the_rules_and_the_file_in_step(
    server: RunningServer, vendor: Vendor
) -> None:
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(AdminClient(server.address, server.token))
            for _ in range(CLIENTS)
        ]
        admin = clients[0]
        ledger = Ledger()
        first = vendor.issue(4, license_id="S-FIRST")
        ledger.keys["S-FIRST"] = Issued(4, 6, first)
        await admin.install_license(first)  # the evaluation ends: seats count from here
        disk = read_disk(server.config.database_path)

        for round_no in range(ROUNDS):
            rng = random.Random(f"stress-admin-round-{round_no}")
            ledger.successes = ledger.forced_this_round = 0
            ledger.issued_this_round = []

            seeds = [rng.randrange(2**32) for _ in clients]
            await asyncio.gather(
                *(
                    client_calls(c, random.Random(s), vendor, ledger, disk.license_ids)
                    for c, s in zip(clients, seeds, strict=True)
                )
            )
            disk = await check_round(admin, server, ledger, disk, round_no)

        # Last, a cut: one admin force-removes all but the smallest license while the
        # others keep enabling. Nobody disables, so whoever was enabled stays enabled.
        if not disk.license_ids:  # every license was removed, by force
            spare = vendor.issue(1, license_id="S-SPARE")
            ledger.keys["S-SPARE"] = Issued(1, 6, spare)
            await admin.install_license(spare)
            disk = read_disk(server.config.database_path)
        keep = min(disk.license_ids, key=lambda i: ledger.keys[i].seats)
        enabled_before = sum(on for on, _ in disk.users.values())
        ledger.successes = ledger.forced_this_round = 0
        cuts = [i for i in disk.license_ids if i != keep]

        async def cut() -> None:
            for license_id in cuts:
                await clients[0].remove_license(license_id, force=True)
                ledger.successes += 1
                ledger.forced_this_round += 1

        async def keep_enabling(client: AdminClient, rng: random.Random) -> None:
            for _ in range(CALLS_PER_CLIENT):
                try:
                    await client.enable_users([spelt(rng, rng.choice(sorted(ledger.added)))])
                except SeatsExhaustedError:
                    continue
                ledger.successes += 1

        rng = random.Random("stress-admin-cut")
        await asyncio.gather(cut(), *(keep_enabling(c, rng) for c in clients[1:]))
        disk = await check_round(admin, server, ledger, disk, ROUNDS)
        assert disk.license_ids == [keep]
        if enabled_before > ledger.keys[keep].seats:
            assert ledger.rounds_over_capacity > 0

    done = sum(n for outcome, n in ledger.outcomes.items() if "refused" not in outcome)
    refused = sum(n for outcome, n in ledger.outcomes.items() if "refused" in outcome)
    assert done + refused == ROUNDS * CLIENTS * CALLS_PER_CLIENT
    # The mix really raced: changes were made and refused, seats ran out, removals forced.
    for seen in (
        "enable done",
        "install done",
        "remove done",
        "enable refused: SEATS_EXHAUSTED",
        "remove refused: REMOVAL_EXCEEDS_SEATS",
    ):
        assert ledger.outcomes[seen] > 0, (seen, ledger.outcomes)


async def test_a_remove_racing_an_install_of_the_same_license_reports_what_it_did(
    server: RunningServer, vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The removal arrives while the install of the same id is committing: it must either
    remove the license and say so, or refuse and leave it (it once removed it, then
    answered INTERNAL "nothing was changed": it had read the license before the lock)."""
    assert server.app is not None
    service = server.app.service
    store = service._store
    committing, release, remove_waiting = asyncio.Event(), asyncio.Event(), asyncio.Event()
    real_change, real_remove = store.change, service.remove_license

    @contextlib.asynccontextmanager
    async def held_change() -> AsyncIterator[Transaction]:
        async with real_change() as tx:
            real_write = tx.write

            async def held_write(change: Change) -> int:
                if change.add_licenses:  # the install holds the lock until the test lets go
                    committing.set()
                    await release.wait()
                return await real_write(change)

            tx.write = held_write  # type: ignore[method-assign]
            yield tx

    async def remove_then_signal(license_id: str, force: bool) -> Any:
        removal = real_remove(license_id, force)
        remove_waiting.set()  # runs on, reading the registry, until it waits for the lock
        return await removal

    monkeypatch.setattr(store, "change", held_change)
    monkeypatch.setattr(service, "remove_license", remove_then_signal)
    text = vendor.issue(5, license_id="S-RACE")
    async with (
        AdminClient(server.address, server.token) as installer,
        AdminClient(server.address, server.token) as remover,
    ):
        install = asyncio.create_task(installer.install_license(text))
        await committing.wait()
        remove = asyncio.create_task(remover.remove_license("S-RACE"))
        await remove_waiting.wait()
        release.set()
        await install
        outcome = (await asyncio.gather(remove, return_exceptions=True))[0]
        installed = [lic.license_id for lic in await installer.list_licenses()]
        actions = [r.action for r in await installer.audit()]

    if isinstance(outcome, NotFoundError):
        assert "S-RACE" in installed  # refused: nothing removed
    else:
        state = "gone" if "S-RACE" not in installed else "still installed"
        assert not isinstance(outcome, BaseException), (
            f"the remove failed with {outcome!r}, but the license is {state}; audit: {actions}"
        )
        assert "S-RACE" not in installed
