"""`scripts/bench.py --propagation`: how long a change takes to reach another server.

Two real servers, A and B, over one PostgreSQL database (a PostgreSQL server of this run's
own, scripts/postgres.py), and one real server on the embedded SQLite default, each in a
process of its own. A change is an admin call at A: the probe user enabled, then disabled,
alternately. The moment A acknowledges it, a caller at A and one at B each send a 6.x
login for the probe user every `poll_ms` until the answer shows the change (granted after
an enable, refused after a disable). The time from the acknowledgement to that answer at
A is the baseline (the change is in A's memory when A answers: this is one login's round
trip and the polling's resolution); at B it is the time the change took to reach another
server: the NOTIFY, B reading the database again, and the same login round trip. The
SQLite server is measured the same way, at A only (it has no other server), and the
changes of the two databases take turns, so the machine's slow moments fall on both.

Rows, in ms: the change acknowledged (the admin call's time, SQLite against PostgreSQL),
seen at A after the acknowledgement, seen at B after it; each with median, p90, min and
max, and the medians' ratios; the spread is the ratio of medians in each quarter of the
run.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from officestatus_client import AdminClient, SeatClient
from officestatus_server.core.keys import LicenseKey, LicenseKind, SigningKey, sign_key
from scripts.benchmark import BenchError
from scripts.benchmark.children import Children, Server, real_server_command
from scripts.postgres import PostgresCluster

PROBE = "probe"


@dataclass(frozen=True)
class PropagationPlan:
    """How many changes, how often the callers poll, the pause between changes."""

    changes: int = 200  # per database, half enables, half disables
    # Disabled users beside the probe: a server that hears of a change reads the state
    # again, so the time grows with the installation's size.
    users: int = 0
    poll_ms: float = 1.0
    pause_ms: float = 50.0
    # A change not seen within this long fails the run.
    timeout_seconds: float = 10.0
    smoke: bool = False


FULL = PropagationPlan()
SMOKE = PropagationPlan(changes=10, pause_ms=10.0, smoke=True)


@dataclass
class Timing:
    """One row: every change's time in ms, and its summary."""

    id: str
    label: str
    ms: list[float] = field(default_factory=list)

    def stat(self, name: str) -> float:
        """median, p90, min or max, in ms."""
        values = sorted(self.ms)
        if not values:
            return 0.0
        if name == "median":
            return statistics.median(values)
        if name == "p90":  # nearest rank
            return values[max(0, math.ceil(0.9 * len(values)) - 1)]
        return values[0] if name == "min" else values[-1]


@dataclass
class PropagationResults:
    """What --propagation found, as its JSON file has it."""

    machine: dict[str, Any]
    plan: dict[str, Any]
    rows: list[Timing] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    # The ratio of B's median to A's, in each quarter of the run: the spread.
    quarter_ratios: list[float] = field(default_factory=list)
    error: str | None = None
    pids: list[int] = field(default_factory=list)

    def row(self, row_id: str) -> Timing:
        """The row with this id."""
        return next(r for r in self.rows if r.id == row_id)


def _rows() -> list[Timing]:
    return [
        Timing("sqlite/ack", "SQLite: change acknowledged at A"),
        Timing("sqlite/a", "SQLite: seen at A, after the ack"),
        Timing("pg/ack", "PostgreSQL: change acknowledged at A"),
        Timing("pg/a", "PostgreSQL: seen at A, after the ack"),
        Timing("pg/b", "PostgreSQL: seen at B, after the ack"),
    ]


@dataclass
class _Side:
    """One database: the servers polled (A, and B over PostgreSQL), and whether the probe
    is enabled now."""

    key: str
    polled: dict[str, Server]
    enabled: bool = False


async def _seen(
    seat: SeatClient, granted: bool, since: float, plan: PropagationPlan, name: str
) -> float:
    """Poll a login until its answer is `granted`; the ms from `since` to that answer."""
    deadline = since + plan.timeout_seconds
    while True:
        result = await seat.login(PROBE)
        answered = time.perf_counter()
        if result.granted:
            await seat.logout(result.session_id)
        if result.granted == granted:
            return 1e3 * (answered - since)
        if answered > deadline:
            raise BenchError(f"{name} did not show the change within {plan.timeout_seconds:g} s")
        await asyncio.sleep(plan.poll_ms / 1e3)


async def _one_change(
    side: _Side,
    admin: AdminClient,
    seats: dict[str, SeatClient],
    plan: PropagationPlan,
    results: PropagationResults,
) -> None:
    enable = not side.enabled
    started = time.perf_counter()
    if enable:
        await admin.enable_users([PROBE])
    else:
        await admin.disable_users([PROBE])
    acknowledged = time.perf_counter()
    side.enabled = enable
    results.row(f"{side.key}/ack").ms.append(1e3 * (acknowledged - started))
    names = list(seats)
    times = await asyncio.gather(
        *(_seen(seats[n], enable, acknowledged, plan, f"{side.key} {n}") for n in names)
    )
    for name, ms in zip(names, times, strict=True):
        results.row(f"{side.key}/{name}").ms.append(ms)


async def _prepare(server: Server, data: Path, key: str, users: int) -> None:
    """The license (which ends the evaluation), the probe user and `users` more, all
    disabled."""
    async with AdminClient.local(server.address, data, timeout=120) as admin:
        await admin.install_license(key)
        await admin.add_users([PROBE])
        for start in range(0, users, 10_000):
            names = [f"user{i:06d}" for i in range(start, min(users, start + 10_000))]
            await admin.add_users(names)


async def _warm_up(admin: AdminClient, b: SeatClient, plan: PropagationPlan) -> None:
    """The probe enabled and disabled once, each waited for at B (not timed): B has read
    everything before it, and the first timed change finds both servers warm."""
    for enable in (True, False):
        await (admin.enable_users if enable else admin.disable_users)([PROBE])
        await _seen(b, enable, time.perf_counter(), plan, "B, warming up")


def _license(signing: SigningKey) -> str:
    today = datetime.now(UTC).date()
    key = LicenseKey(
        signing_key_id=signing.key_id,
        license_id="BENCH-PROPAGATION",
        major_version=6,
        seats=5,
        kind=LicenseKind.PURCHASED,
        customer="Bench Ltd",
        purchase_date=today,
        issue_date=today,
    )
    return sign_key(key, signing.private_key)


async def run_propagation(
    plan: PropagationPlan, work: Path, results: PropagationResults, children: Children
) -> None:
    """The whole --propagation run; fills `results` as it goes."""
    # Not under the work folder: PostgreSQL runs as `postgres` when this runs as root.
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="officestatus-bench-pg-")))
    try:
        cluster.init()
        await cluster.start()
        url = await cluster.create_database()
        await _run(plan, work, results, children, url)
    finally:
        await children.stop_all()  # the servers before their database
        await cluster.close()


async def _run(
    plan: PropagationPlan,
    work: Path,
    results: PropagationResults,
    children: Children,
    url: str,
) -> None:
    signing = SigningKey.generate("kms-bench")
    vendor_key = work / "kms-bench.pub"
    vendor_key.write_text(signing.public_text())
    key = _license(signing)
    dirs = {name: work / name for name in ("sqlite", "pg-a", "pg-b")}
    results.rows = _rows()
    with (work / "servers.log").open("ab") as log:

        async def start(name: str, *extra: str) -> Server:
            command = [*real_server_command(dirs[name], vendor_key), *extra]
            return await children.start_server(name, command, log)

        sqlite = await start("sqlite")
        pg_a = await start("pg-a", "--database", url)  # makes the installation
        pg_b = await start("pg-b", "--database", url)  # joins it
        await _prepare(sqlite, dirs["sqlite"], key, plan.users)
        await _prepare(pg_a, dirs["pg-a"], key, plan.users)
        sides = [
            _Side("sqlite", {"a": sqlite}),
            _Side("pg", {"a": pg_a, "b": pg_b}),
        ]
        print(
            f"servers up: SQLite, and two over PostgreSQL, {plan.users + 1:,} users each; "
            f"{plan.changes} changes each, "
            f"polled every {plan.poll_ms:g} ms",
            flush=True,
        )
        async with (
            AdminClient.local(sqlite.address, dirs["sqlite"]) as admin_sqlite,
            AdminClient.local(pg_a.address, dirs["pg-a"]) as admin_pg,
        ):
            admins = {"sqlite": admin_sqlite, "pg": admin_pg}
            clients = {
                (side.key, name): SeatClient(server.address)
                for side in sides
                for name, server in side.polled.items()
            }
            try:
                await _warm_up(admin_pg, clients[("pg", "b")], plan)
                for change in range(plan.changes):
                    order = sides if change % 2 == 0 else sides[::-1]
                    for side in order:
                        seats = {n: clients[(side.key, n)] for n in side.polled}
                        await _one_change(side, admins[side.key], seats, plan, results)
                        await asyncio.sleep(plan.pause_ms / 1e3)
                    if (change + 1) % max(1, plan.changes // 10) == 0:
                        print(f"  {change + 1}/{plan.changes} changes", flush=True)
            finally:
                for client in clients.values():
                    await client.close()
    _ratios(results)
    for server in (pg_b, pg_a, sqlite):
        await children.stop_server(server)
        if server.process.returncode != 0:
            raise BenchError(
                f"{server.name} exited with {server.process.returncode}; see {work}/servers.log"
            )


def _ratios(results: PropagationResults) -> None:
    med = {r.id: r.stat("median") for r in results.rows}
    if med["pg/a"] and med["sqlite/ack"] and med["sqlite/a"]:
        results.ratios = {
            "pg/b over pg/a": med["pg/b"] / med["pg/a"],
            "pg/ack over sqlite/ack": med["pg/ack"] / med["sqlite/ack"],
            "pg/a over sqlite/a": med["pg/a"] / med["sqlite/a"],
        }
    a, b = results.row("pg/a").ms, results.row("pg/b").ms
    size = max(1, len(a) // 4)
    results.quarter_ratios = [
        statistics.median(b[i : i + size]) / statistics.median(a[i : i + size])
        for i in range(0, len(a) - size + 1, size)
        if statistics.median(a[i : i + size])
    ]


def print_propagation(results: PropagationResults, plan: PropagationPlan) -> None:
    """The table, the ratios and their spread."""
    head = f"{'':<40} {'median':>8} {'p90':>8} {'min':>8} {'max':>8} {'changes':>8}"
    print(head)
    print("-" * len(head))
    for r in results.rows:
        figures = " ".join(f"{r.stat(s):>8.2f}" for s in ("median", "p90", "min", "max"))
        print(f"{r.label:<40} {figures} {len(r.ms):>8}")
    print(
        f"ms; seen: the first login answered with the change, polled every {plan.poll_ms:g} "
        "ms after the acknowledgement (the enables granted, the disables refused)."
    )
    if results.ratios:
        ratio = results.ratios
        spread = (
            f"{min(results.quarter_ratios):.2f}-{max(results.quarter_ratios):.2f}"
            if results.quarter_ratios
            else "-"
        )
        note = " (smoke sizes: not meaningful)" if plan.smoke else ""
        print(
            f"\na change reached server B in {results.row('pg/b').stat('median'):.1f} ms "
            f"(median; {results.row('pg/b').stat('max'):.1f} ms at most), "
            f"{ratio['pg/b over pg/a']:.2f}x the time it took to show at A itself "
            f"(quarters of the run: {spread}); a change acknowledged over PostgreSQL took "
            f"{ratio['pg/ack over sqlite/ack']:.2f}x SQLite's{note}"
        )
