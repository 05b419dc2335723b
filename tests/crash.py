"""A crash workload against the real `officestatus-server` process.

One round: start the server on a fresh data directory, install a base license and add
every user, then let several admin clients change licenses and users at once until the
server is SIGKILLed at a random moment. Restart it on the same data directory and check
the product's promise: an acknowledged change is never lost, a refused one never takes
effect, the seats are never over-allocated except by a forced removal, every change is
in the audit log, and the SQLite file is intact.

Over PostgreSQL (`RoundConfig.database`, a URL), a round may run several servers over the
one database, the workers spread over them, all SIGKILLed at the same moment: the seat
rule and the audit chain then hold across servers, and the state is read back from
PostgreSQL itself.

Each worker owns its own users and license ids, and calls one at a time, so the
expected final state of every user and license is well defined: the state after its last
acknowledged call, or after the one call that was in flight for it when the server died.
The audit log gives the order in which the server committed the changes of all workers,
so the seat rules can be replayed change by change.

Used by tests/test_crash_safety.py (a few rounds) and scripts/crash_soak.py (many).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from officestatus_client import (
    AdminClient,
    AlreadyExistsError,
    NotFoundError,
    OfficeStatusError,
    PreconditionFailedError,
    SeatsExhaustedError,
)
from scripts.processes import terminate
from tests.process import ServerProcess, start_server_process
from tests.support import Vendor

# What came of a call.
OK = "ok"  # acknowledged: the server answered with success
REFUSED = "refused"  # the server said no
UNKNOWN = "unknown"  # no answer: in flight when the server died (or sent after)

# Refusals the workload provokes on purpose; any other error from a live server is a
# violation.
REFUSALS: tuple[type[OfficeStatusError], ...] = (
    SeatsExhaustedError,
    PreconditionFailedError,
    NotFoundError,
    AlreadyExistsError,
)

AUDIT_ACTIONS = {
    "install": "license.install",
    "remove": "license.remove",
    "enable": "users.enable",
    "disable": "users.disable",
}
# The refusals each call may meet in this workload; any other is a violation.
EXPECTED_REFUSALS = {
    "install": {"LICENSE_ALREADY_INSTALLED"},
    "remove": {"LICENSE_NOT_FOUND", "REMOVAL_EXCEEDS_SEATS"},
    "enable": {"SEATS_EXHAUSTED"},
    "disable": set(),
}
BASE_LICENSE = "L-BASE"
DATABASE = "officestatus.db"


@dataclass(frozen=True)
class RoundConfig:
    """One kill point: the seed of the workload and when the server dies."""

    seed: int
    kill_after: float  # seconds after the workers start
    workers: int = 4
    users_per_worker: int = 4
    licenses_per_worker: int = 2
    base_seats: int = 4
    call_timeout: float = 10.0
    max_calls_per_worker: int = 5_000
    # A postgresql:// URL of an empty database, or None for the SQLite default.
    database: str | None = None
    # Servers over the one database (PostgreSQL only); worker w calls server w % servers.
    servers: int = 1

    def users(self, worker: int) -> list[str]:
        """The users a worker owns."""
        return [f"w{worker}-user{i}" for i in range(self.users_per_worker)]

    def licenses(self, worker: int) -> dict[str, int]:
        """The license ids a worker owns, with their seats (1, 2, 1, 2, ...)."""
        return {f"L-W{worker}-{i}": 1 + i % 2 for i in range(self.licenses_per_worker)}


@dataclass
class Call:
    """One admin call and what came of it."""

    worker: int
    index: int
    op: str  # install | remove | enable | disable
    targets: tuple[str, ...]  # a license id, or one or more user names
    force: bool = False
    outcome: str = ""
    reason: str = ""  # the refusal's reason, or the error of an unknown call
    started: float = 0.0
    ended: float = 0.0

    @property
    def action(self) -> str:
        """The audit log's action for this call."""
        return AUDIT_ACTIONS[self.op]

    @property
    def subject(self) -> str:
        """The audit log's subject for this call."""
        return ", ".join(self.targets)

    @property
    def effect(self) -> bool:
        """The state each target has once this call took effect: installed / enabled."""
        return self.op in ("install", "enable")

    def __str__(self) -> str:
        force = " --force" if self.force else ""
        detail = f" ({self.reason})" if self.reason else ""
        return (
            f"w{self.worker}#{self.index} {self.op} {self.subject}{force} -> {self.outcome}{detail}"
        )


@dataclass
class RoundResult:
    """What one round did and found."""

    config: RoundConfig
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    server_log: list[str] = field(default_factory=list)
    killed_at: float = 0.0
    # Calls in flight whose change the server had committed when it died.
    in_flight_committed: int = 0

    def count(self, outcome: str) -> int:
        """How many calls came to `outcome`."""
        return sum(1 for c in self.calls if c.outcome == outcome)

    @property
    def refusal_reasons(self) -> collections.Counter[str]:
        """How often each refusal reason came."""
        return collections.Counter(c.reason for c in self.calls if c.outcome == REFUSED)

    @property
    def in_flight_at_kill(self) -> int:
        """Unanswered calls sent before the kill (the others were sent after it)."""
        return sum(1 for c in self.calls if c.outcome == UNKNOWN and c.started < self.killed_at)

    def summary(self) -> str:
        """One line for people."""
        t = self.timings
        return (
            f"seed {self.config.seed}, kill after {self.config.kill_after:.2f} s: "
            f"{len(self.calls)} calls ({self.count(OK)} acknowledged, "
            f"{self.count(REFUSED)} refused, {self.count(UNKNOWN)} unanswered: "
            f"{self.in_flight_at_kill} in flight at the kill, "
            f"{self.in_flight_committed} of them committed); "
            f"{len(self.violations)} violations; "
            f"{t.get('total', 0):.1f} s (start {t.get('start', 0):.2f}, "
            f"traffic {t.get('traffic', 0):.2f}, restart {t.get('restart', 0):.2f}, "
            f"check {t.get('check', 0):.2f})"
        )


class _Server:
    """A server process whose output is read as it comes: unread, a full pipe would block
    the server's logging, and so the server."""

    def __init__(self, process: ServerProcess, log: collections.deque[str]) -> None:
        self.process = process
        self.address = process.address
        self._log = log
        self._log.extend(process.banner.splitlines())
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, data: Path, pub: Path, log: collections.deque[str], database: str | None = None
    ) -> _Server:
        extra = ("--database", database) if database else ()
        return cls(await start_server_process(data, "--vendor-key", str(pub), *extra), log)

    async def _read(self) -> None:
        stdout = self.process.process.stdout
        assert stdout is not None
        while raw := await stdout.readline():
            self._log.append(raw.decode(errors="replace").rstrip())

    async def kill(self) -> None:
        """SIGKILL."""
        await self.process.kill()
        await self._reader

    async def stop(self, timeout: float = 20) -> int:
        """SIGTERM (SIGKILL after `timeout`); the exit code, -1 when it had to be killed."""
        in_time = await terminate(self.process.process, timeout)
        await self._reader
        if not in_time:
            return -1
        return self.process.process.returncode or 0


def _open_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def integrity(path: Path) -> str:
    """PRAGMA integrity_check of the SQLite file, opened read-only: "ok", or what is wrong."""
    try:
        conn = _open_readonly(path)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"cannot be read: {exc}"
    return "; ".join(str(r[0]) for r in rows)


def read_audit(path: Path) -> list[tuple[int, str, str, str]]:
    """Every audit row (id, action, subject, result), oldest first, read-only."""
    conn = _open_readonly(path)
    try:
        rows = conn.execute(_AUDIT).fetchall()
    finally:
        conn.close()
    return [(int(i), str(a), str(s), str(r)) for i, a, s, r in rows]


_LICENSES = "SELECT license_id FROM licenses"
_ENABLED = "SELECT name FROM users WHERE enabled = 1"
_AUDIT = "SELECT id, action, subject, result FROM audit ORDER BY id"


def read_state(path: Path) -> tuple[set[str], set[str]]:
    """Installed license ids and enabled user names, as stored, read-only."""
    conn = _open_readonly(path)
    try:
        licenses = {str(r[0]) for r in conn.execute(_LICENSES)}
        enabled = {str(r[0]) for r in conn.execute(_ENABLED)}
    finally:
        conn.close()
    return licenses, enabled


Stored = tuple[set[str], set[str], list[tuple[int, str, str, str]]]


async def read_postgres(url: str) -> Stored:
    """Installed license ids, enabled user names and every audit row, as PostgreSQL holds
    them (the same tables and columns as SQLite's)."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        licenses = {str(r[0]) for r in await conn.fetch(_LICENSES)}
        enabled = {str(r[0]) for r in await conn.fetch(_ENABLED)}
        audit = [(int(i), str(a), str(s), str(r)) for i, a, s, r in await conn.fetch(_AUDIT)]
    finally:
        await conn.close()
    return licenses, enabled, audit


async def read_stored(data: Path, database: str | None) -> Stored:
    """What the database holds: the SQLite file in `data`, or PostgreSQL at `database`."""
    if database:
        return await read_postgres(database)
    licenses, enabled = read_state(data / DATABASE)
    return licenses, enabled, read_audit(data / DATABASE)


# --- the workload -----------------------------------------------------------------------


class _Worker:
    """One admin with its own client, users and licenses, calling one call at a time."""

    def __init__(
        self, worker: int, config: RoundConfig, keys: dict[str, str], calls: list[Call]
    ) -> None:
        self.worker = worker
        self.config = config
        self.keys = keys
        self.calls = calls
        self.rng = random.Random(f"{config.seed}/{worker}")
        self.users = config.users(worker)
        self.licenses = list(config.licenses(worker))
        # What this worker believes, from the answers it got.
        self.installed: set[str] = set()
        self.enabled: set[str] = set()

    def _pick(self, pool: list[str], preferred: Iterable[str], p: float = 0.85) -> str:
        preferred = [x for x in pool if x in set(preferred)]
        if preferred and self.rng.random() < p:
            return self.rng.choice(preferred)
        return self.rng.choice(pool)

    def next_call(self, index: int) -> Call:
        r = self.rng.random()
        not_installed = set(self.licenses) - self.installed
        disabled = set(self.users) - self.enabled
        if r < 0.2:
            return Call(self.worker, index, "install", (self._pick(self.licenses, not_installed),))
        if r < 0.4:
            lid = self._pick(self.licenses, self.installed)
            return Call(self.worker, index, "remove", (lid,), force=self.rng.random() < 0.25)
        op = "enable" if r < 0.75 else "disable"
        preferred = disabled if op == "enable" else self.enabled
        first = self._pick(self.users, preferred)
        targets = [first]
        if self.rng.random() < 0.2:  # all or none, for two users at once
            targets.append(self._pick([u for u in self.users if u != first], preferred))
        return Call(self.worker, index, op, tuple(targets))

    async def _send(self, admin: AdminClient, call: Call) -> None:
        if call.op == "install":
            await admin.install_license(self.keys[call.targets[0]])
        elif call.op == "remove":
            await admin.remove_license(call.targets[0], force=call.force)
        elif call.op == "enable":
            await admin.enable_users(call.targets)
        else:
            await admin.disable_users(call.targets)

    async def run(self, address: str, data: Path) -> None:
        """Call until a call goes unanswered (the server died)."""
        async with AdminClient.local(address, data, timeout=self.config.call_timeout) as admin:
            for index in range(self.config.max_calls_per_worker):
                call = self.next_call(index)
                self.calls.append(call)
                call.started = time.monotonic()
                try:
                    await self._send(admin, call)
                except REFUSALS as exc:
                    call.outcome, call.reason = REFUSED, exc.reason or exc.code
                except OfficeStatusError as exc:
                    # Unavailable when the server died; anything else is checked later.
                    call.outcome, call.reason = UNKNOWN, f"{type(exc).__name__} {exc.code}"
                    call.ended = time.monotonic()
                    return
                else:
                    call.outcome = OK
                    targets = set(call.targets)
                    if call.op == "install":
                        self.installed |= targets
                    elif call.op == "remove":
                        self.installed -= targets
                    elif call.op == "enable":
                        self.enabled |= targets
                    else:
                        self.enabled -= targets
                call.ended = time.monotonic()


async def run_round(work_dir: Path, config: RoundConfig) -> RoundResult:
    """One kill point: traffic, SIGKILL, restart, checks. Violations are in the result;
    an exception means the round itself could not run."""
    if config.servers > 1 and not config.database:
        raise ValueError("several servers need a shared database (RoundConfig.database)")
    result = RoundResult(config)
    log: collections.deque[str] = collections.deque(maxlen=200)
    vendor = Vendor()
    work_dir.mkdir(parents=True, exist_ok=True)
    pub = vendor.write_public_key(work_dir)
    # One data directory per server (the admin token is written to each).
    datas = [work_dir / ("data" if i == 0 else f"data-{i}") for i in range(config.servers)]
    data = datas[0]
    sqlite = config.database is None
    seats = {BASE_LICENSE: config.base_seats}
    keys: dict[str, str] = {}
    for w in range(config.workers):
        for lid, n in config.licenses(w).items():
            seats[lid] = n
            keys[lid] = vendor.issue(n, license_id=lid)
    all_users = [u for w in range(config.workers) for u in config.users(w)]

    t0 = time.monotonic()
    servers: list[_Server] = []
    try:
        # The first server makes the installation; the others join it.
        servers.append(await _Server.start(data, pub, log, config.database))
        servers += await asyncio.gather(
            *(_Server.start(d, pub, log, config.database) for d in datas[1:])
        )
        # Setup, before the kill window: the base license ends the evaluation, so every
        # enable needs a free seat; every user starts disabled.
        async with AdminClient.local(servers[0].address, data) as admin:
            await admin.install_license(vendor.issue(config.base_seats, license_id=BASE_LICENSE))
            await admin.add_users(all_users)
        if len(servers) > 1:
            await _all_heard(servers, datas, len(all_users))
        t1 = time.monotonic()
        result.timings["start"] = t1 - t0

        workers = [_Worker(w, config, keys, result.calls) for w in range(config.workers)]
        tasks = [
            asyncio.create_task(wk.run(servers[w % len(servers)].address, datas[w % len(servers)]))
            for w, wk in enumerate(workers)
        ]
        await asyncio.sleep(config.kill_after)
        killed_at = result.killed_at = time.monotonic()
        await asyncio.gather(*(s.kill() for s in servers))
        async with asyncio.timeout(config.call_timeout + 10):
            await asyncio.gather(*tasks)
        t2 = time.monotonic()
        result.timings["traffic"] = t2 - t1
    except BaseException:
        for s in servers:
            with contextlib.suppress(ProcessLookupError):
                await s.kill()
        result.server_log = list(log)
        raise

    # The file as the crash left it, before a server opens it again.
    if sqlite:
        crashed = integrity(data / DATABASE)
        if crashed != "ok":
            result.violations.append(f"integrity_check right after the kill: {crashed}")

    server = await _Server.start(data, pub, log, config.database)
    try:
        async with AdminClient.local(server.address, data) as admin:
            users = await admin.list_users()
            licenses = await admin.list_licenses()
            status = await admin.status()
            chain = await admin.verify_audit()
        t3 = time.monotonic()
        result.timings["restart"] = t3 - t2
    finally:
        code = await server.stop()
    if code != 0:
        result.violations.append(f"the restarted server exited with {code} on SIGTERM")
    if not chain.intact:
        result.violations.append(f"the audit log's hash chain is broken: {chain.problems}")
    if sqlite:
        stopped = integrity(data / DATABASE)
        if stopped != "ok":
            result.violations.append(f"integrity_check after the restart: {stopped}")

    served_enabled = {u.name for u in users if u.enabled}
    served_licenses = {lic.license_id for lic in licenses}
    stored_licenses, stored_enabled, audit = await read_stored(data, config.database)
    if (served_licenses, served_enabled) != (stored_licenses, stored_enabled):
        result.violations.append(
            f"the restarted server serves licenses {sorted(served_licenses)} and enabled "
            f"users {sorted(served_enabled)}, the database holds {sorted(stored_licenses)} "
            f"and {sorted(stored_enabled)}"
        )
    findings = check(
        config,
        result.calls,
        killed_at=killed_at,
        installed=served_licenses,
        enabled=served_enabled,
        seats=seats,
        seats_total=status.seats_total,
        users_enabled=status.users_enabled,
        audit=audit,
    )
    result.violations += findings.violations
    result.in_flight_committed = findings.in_flight_committed
    result.timings["check"] = time.monotonic() - t3
    result.timings["total"] = time.monotonic() - t0
    result.server_log = list(log)
    return result


async def _all_heard(servers: list[_Server], datas: list[Path], users: int) -> None:
    """Wait (at most 10 s) until every server has heard of the setup's users."""
    deadline = time.monotonic() + 10
    for server, data in zip(servers, datas, strict=True):
        async with AdminClient.local(server.address, data) as admin:
            while len(await admin.list_users()) < users:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{server.address} did not hear of the setup's users")
                await asyncio.sleep(0.02)


# --- the checks -------------------------------------------------------------------------


@dataclass
class Findings:
    """What the checks found."""

    violations: list[str] = field(default_factory=list)
    in_flight_committed: int = 0


def check(
    config: RoundConfig,
    calls: list[Call],
    *,
    killed_at: float,
    installed: set[str],
    enabled: set[str],
    seats: dict[str, int],
    seats_total: int,
    users_enabled: int,
    audit: list[tuple[int, str, str, str]],
) -> Findings:
    """Every way the state after the restart breaks the promise, as sentences."""
    findings = Findings()
    violations = findings.violations

    # A live server answers every call; an error other than a refusal, or no answer,
    # before the kill is a failure of its own.
    for call in calls:
        if call.outcome == UNKNOWN and call.ended < killed_at:
            violations.append(f"failed while the server was alive: {call}")
        if call.outcome == REFUSED:
            may_refuse = EXPECTED_REFUSALS[call.op] - (
                {"REMOVAL_EXCEEDS_SEATS"} if call.force else set()
            )
            if call.reason not in may_refuse:
                violations.append(f"refused for a reason this call cannot have: {call}")

    # Per user and license: the state after its last acknowledged call, or after the
    # one call in flight for it. The setup leaves every user disabled, no worker license.
    expected: dict[str, set[bool]] = {}
    for w in range(config.workers):
        for name in [*config.users(w), *config.licenses(w)]:
            expected[name] = {False}
    for call in calls:
        for target in call.targets:
            if call.outcome == OK:
                expected[target] = {call.effect}
            elif call.outcome == UNKNOWN:
                expected[target] = expected[target] | {call.effect}
    for name, allowed in sorted(expected.items()):
        is_license = name.startswith("L-")
        actual = name in (installed if is_license else enabled)
        if actual not in allowed:
            what = (
                ("installed" if actual else "not installed")
                if is_license
                else ("enabled" if actual else "disabled")
            )
            last = [c for c in calls if name in c.targets and c.outcome != REFUSED][-1:]
            refused = [c for c in calls if name in c.targets and c.outcome == REFUSED][-1:]
            violations.append(
                f"{name} is {what} after the restart; last acknowledged or in-flight call: "
                f"{last[0] if last else 'none'}; last refused call: "
                f"{refused[0] if refused else 'none'}"
            )
    if BASE_LICENSE not in installed:
        violations.append(f"the base license {BASE_LICENSE} is gone after the restart")

    # The seats: the restarted server counts what is installed, and never has more users
    # enabled than seats unless a forced removal was acknowledged or in flight.
    if seats_total != sum(seats[lid] for lid in installed):
        violations.append(
            f"{seats_total} seats counted for licenses {sorted(installed)} "
            f"({sum(seats[lid] for lid in installed)} seats)"
        )
    forced = [c for c in calls if c.op == "remove" and c.force and c.outcome in (OK, UNKNOWN)]
    if users_enabled > seats_total and not forced:
        violations.append(
            f"{users_enabled} users enabled on {seats_total} seats, and no forced removal"
        )

    _check_audit(config, calls, audit, seats, findings)
    return findings


def _check_audit(
    config: RoundConfig,
    calls: list[Call],
    audit: list[tuple[int, str, str, str]],
    seats: dict[str, int],
    findings: Findings,
) -> None:
    """The audit log holds exactly each worker's acknowledged changes in order (and
    perhaps its call in flight), nothing refused; replayed in the log's order, no change
    but a forced removal ever left more users enabled than seats."""
    violations = findings.violations
    owner = {}
    for w in range(config.workers):
        for name in [*config.users(w), *config.licenses(w)]:
            owner[name] = w
    logged: dict[int, list[tuple[int, str, str, str]]] = collections.defaultdict(list)
    setup: list[tuple[str, str]] = []
    for row in audit:
        _, action, subject, _ = row
        w = owner.get(subject.split(", ")[0], -1)
        if action == "users.add" or (action, subject) == ("license.install", BASE_LICENSE):
            setup.append((action, subject))
        elif w >= 0:
            logged[w].append(row)
        elif action in AUDIT_ACTIONS.values():
            violations.append(f"the audit log has a change nobody made: {row}")
        # Anything else is the server's own (a clock set back, say): not the workload's.
    if [a for a, _ in setup] != ["license.install", "users.add"]:
        violations.append(f"the audit log's setup entries are {setup}")

    committed: dict[int, Call] = {}  # audit id -> the call it records
    for w in range(config.workers):
        mine = [c for c in calls if c.worker == w]
        acked = [c for c in mine if c.outcome == OK]
        in_flight = [c for c in mine if c.outcome == UNKNOWN]
        rows = logged[w]
        entries = [(a, s) for _, a, s, _ in rows]
        want = [(c.action, c.subject) for c in acked]
        if entries == want:
            chosen = acked
        elif in_flight and entries == [*want, (in_flight[0].action, in_flight[0].subject)]:
            chosen = [*acked, in_flight[0]]
            findings.in_flight_committed += 1
        else:
            missing = [c for c in acked if (c.action, c.subject) not in entries]
            violations.append(
                f"worker {w}: the audit log has {len(entries)} entries for "
                f"{len(acked)} acknowledged changes (+{len(in_flight)} in flight); first "
                f"acknowledged change not logged: {missing[0] if missing else 'none'}; "
                f"first difference at entry {_first_difference(entries, want)}"
            )
            continue
        committed.update({row[0]: c for row, c in zip(rows, chosen, strict=True)})

    if len(committed) != sum(len(v) for v in logged.values()):
        return  # the order cannot be replayed; reported above
    licenses = {BASE_LICENSE}
    enabled: set[str] = set()
    for audit_id, action, subject, result in audit:
        call = committed.get(audit_id)
        if call is None:
            continue
        before = len(enabled) - sum(seats[lid] for lid in licenses)
        targets = set(call.targets)
        if call.op == "install":
            licenses |= targets
        elif call.op == "remove":
            licenses -= targets
        elif call.op == "enable":
            enabled |= targets
        else:
            enabled -= targets
        after = len(enabled) - sum(seats[lid] for lid in licenses)
        if after > max(before, 0) and not (call.op == "remove" and call.force):
            violations.append(
                f"audit #{audit_id} ({action} {subject}: {result}) left {after} users more "
                f"enabled than seats (before: {before}), by {call}"
            )
        if call.op == "remove" and ("forced" in result) != (after > 0):
            violations.append(
                f"audit #{audit_id} ({action} {subject}: {result}) disagrees with the "
                f"replay: {after} users over the seats"
            )


def _first_difference(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"{i}: logged {x}, acknowledged {y}"
    return f"{min(len(a), len(b))}: one list ends"
