"""Crash safety: the real server SIGKILLed under concurrent admin traffic loses no
acknowledged change, applies no refused one, never over-allocates seats but by a forced
removal, logs every change, and leaves an intact SQLite file (tests/crash.py); the same
for two servers over one PostgreSQL database, both SIGKILLed at once.

Also: the checks themselves catch each kind of violation, scripts/crash_soak.py runs,
and a change whose caller gives up while the server commits it is made whole, in memory
and on disk, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from officestatus_client import AdminClient, OfficeStatusError, SeatsExhaustedError
from tests.crash import (
    BASE_LICENSE,
    OK,
    REFUSED,
    UNKNOWN,
    Call,
    RoundConfig,
    check,
    run_round,
)
from tests.support import RunningServer, Vendor

ROOT = Path(__file__).resolve().parent.parent


# --- kill points --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "kill_after"),
    [(101, 0.3), (202, 0.9), (303, 1.6)],
    ids=["kill-at-0.3s", "kill-at-0.9s", "kill-at-1.6s"],
)
async def test_sigkill_under_concurrent_admin_traffic_loses_nothing(
    tmp_path: Path, seed: int, kill_after: float
) -> None:
    await _a_round_loses_nothing(tmp_path, RoundConfig(seed=seed, kill_after=kill_after))


async def _a_round_loses_nothing(work: Path, config: RoundConfig) -> None:
    result = await run_round(work, config)
    report = [result.summary(), *result.violations, "server output:", *result.server_log[-20:]]
    assert result.violations == [], "\n".join(report)
    # The round did what it is meant to: traffic with refusals, cut off by the kill.
    assert result.count(OK) >= 10, result.summary()
    assert result.count(REFUSED) >= 1, result.summary()
    # Each worker calls until a call goes unanswered, then stops: one each.
    assert result.count(UNKNOWN) == config.workers, result.summary()


@pytest.mark.parametrize(("seed", "kill_after"), [(404, 0.6), (505, 1.4)], ids=["0.6s", "1.4s"])
async def test_sigkill_of_two_servers_over_postgresql_loses_nothing(
    tmp_path: Path, pg_url: str, seed: int, kill_after: float
) -> None:
    config = RoundConfig(seed=seed, kill_after=kill_after, database=pg_url, servers=2)
    await _a_round_loses_nothing(tmp_path, config)


@pytest.mark.parametrize("database", [(), ("--postgres",)], ids=["sqlite", "postgresql"])
def test_the_soak_script_runs_its_smoke_rounds(database: tuple[str, ...]) -> None:
    script = str(ROOT / "scripts" / "crash_soak.py")
    done = subprocess.run(
        [sys.executable, script, "--smoke", "--seed", "11", *database],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "round 2/2" in done.stdout
    assert "violations: 0" in done.stdout
    assert ("PostgreSQL, 2 servers" in done.stdout) == bool(database)


# --- the checks catch what they are for ---------------------------------------------------

ONE = RoundConfig(seed=0, kill_after=1, workers=1, users_per_worker=2, licenses_per_worker=1)
ANN, BOB = ONE.users(0)
LIC = next(iter(ONE.licenses(0)))
SEATS = {BASE_LICENSE: 1, LIC: 1}
KILLED_AT = 10.0


def _call(index: int, op: str, target: str, outcome: str, force: bool = False) -> Call:
    ended = KILLED_AT + 1 if outcome == UNKNOWN else index
    reason = "SEATS_EXHAUSTED" if outcome == REFUSED else ""
    return Call(0, index, op, (target,), force, outcome, reason, started=index, ended=ended)


def _audit(*entries: tuple[str, str]) -> list[tuple[int, str, str, str]]:
    rows = [("license.install", BASE_LICENSE), ("users.add", f"{ANN}, {BOB}"), *entries]
    return [(i + 1, action, subject, "") for i, (action, subject) in enumerate(rows)]


def _check(
    calls: list[Call],
    *,
    installed: set[str] | None = None,
    enabled: set[str] | None = None,
    audit: list[tuple[int, str, str, str]],
) -> list[str]:
    installed = {BASE_LICENSE} if installed is None else installed
    enabled = set() if enabled is None else enabled
    return check(
        ONE,
        calls,
        killed_at=KILLED_AT,
        installed=installed,
        enabled=enabled,
        seats=SEATS,
        seats_total=sum(SEATS[lid] for lid in installed),
        users_enabled=len(enabled),
        audit=audit,
    ).violations


# Ann enabled and disabled again, Bob refused a seat, a license install in flight.
CALLS = [
    _call(0, "enable", ANN, OK),
    _call(1, "enable", BOB, REFUSED),
    _call(2, "disable", ANN, OK),
    _call(3, "install", LIC, UNKNOWN),
]
AUDIT = _audit(("users.enable", ANN), ("users.disable", ANN))


def test_the_checks_pass_a_state_that_keeps_the_promise() -> None:
    assert _check(CALLS, audit=AUDIT) == []
    # The install in flight may have been committed before the kill, or not.
    committed = [*AUDIT, (5, "license.install", LIC, "")]
    assert _check(CALLS, installed={BASE_LICENSE, LIC}, audit=committed) == []


def test_the_checks_catch_a_lost_acknowledged_change() -> None:
    (violation,) = _check(CALLS, enabled={ANN}, audit=AUDIT)
    assert f"{ANN} is enabled after the restart" in violation


def test_the_checks_catch_a_refused_change_in_effect() -> None:
    violations = _check(CALLS, enabled={BOB}, audit=AUDIT)
    assert any(f"{BOB} is enabled after the restart" in v for v in violations), violations


def test_the_checks_catch_a_change_missing_from_the_audit_log() -> None:
    (violation,) = _check(CALLS, audit=AUDIT[:-1])
    assert "worker 0: the audit log has 1 entries for 2 acknowledged changes" in violation


def test_the_checks_catch_a_refused_change_in_the_audit_log() -> None:
    (violation,) = _check(CALLS, audit=[*AUDIT[:3], (9, "users.enable", BOB, ""), AUDIT[3]])
    assert "worker 0" in violation


def test_the_checks_catch_a_refusal_the_call_cannot_meet() -> None:
    calls = [*CALLS[:2], _call(2, "remove", LIC, REFUSED, force=True), *CALLS[2:]]
    calls[2].reason = "REMOVAL_EXCEEDS_SEATS"
    (violation,) = _check(calls, audit=AUDIT)
    assert "refused for a reason this call cannot have" in violation


def test_the_checks_catch_seats_over_allocated_without_a_forced_removal() -> None:
    calls = [_call(0, "enable", ANN, OK), _call(1, "enable", BOB, OK)]
    violations = _check(
        calls, enabled={ANN, BOB}, audit=_audit(("users.enable", ANN), ("users.enable", BOB))
    )
    assert "2 users enabled on 1 seats, and no forced removal" in violations
    assert any("left 1 users more enabled than seats" in v for v in violations), violations


def test_the_checks_allow_over_allocation_by_a_forced_removal_only() -> None:
    calls = [
        _call(0, "install", LIC, OK),
        _call(1, "enable", ANN, OK),
        _call(2, "enable", BOB, OK),
        _call(3, "remove", LIC, OK, force=True),
    ]
    audit = _audit(("license.install", LIC), ("users.enable", ANN), ("users.enable", BOB), ("", ""))
    audit[-1] = (6, "license.remove", LIC, "removed; 1 seats in all; forced: 1 over capacity")
    assert _check(calls, enabled={ANN, BOB}, audit=audit) == []


# --- a caller that gives up while the server commits ----------------------------------------
#
# gRPC cancels a handler when its caller's deadline passes or the caller hangs up (an
# officestatus-admin interrupted, a client with a short timeout). These tests cancel the
# service's change the same way, at a chosen statement: aiosqlite runs a statement it was
# given on its own thread whether or not the coroutine awaiting it is cancelled.


async def _give_up_during(server: RunningServer, statement: str, change: Awaitable[Any]) -> None:
    """Run `change` in the server; cancel it once it has sent `statement` to SQLite."""
    assert server.app is not None
    conn: Any = server.app.service._store._db  # type: ignore[attr-defined]
    real: Callable[..., Any] = conn.execute
    sent = asyncio.Event()

    def execute(sql: str, *args: Any) -> Any:
        if sql.startswith(statement):
            sent.set()
        return real(sql, *args)

    conn.execute = execute
    try:
        task = asyncio.ensure_future(change)
        await sent.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        del conn.execute
    if not task.cancelled():
        pytest.fail(f"the change was not cancelled during {statement}")


def _require(condition: bool, message: str) -> None:
    """A precondition of the scenario, failing the test with its own message."""
    if not condition:
        pytest.fail(message)


async def test_an_acknowledged_change_is_not_lost_after_a_caller_gave_up_during_commit(
    server: RunningServer, vendor: Vendor
) -> None:
    async with AdminClient(server.address, server.token) as admin:
        await admin.install_license(vendor.issue(5))
        await admin.add_users(["ann"])
        assert server.app is not None
        service = server.app.service
        # The admin's "enable ann" times out while the server commits it.
        await _give_up_during(server, "COMMIT", service.enable_users(["ann"]))
        # Whatever became of it, the admin now disables ann, and the server says so.
        users, _ = await admin.disable_users(["ann"])
        _require([(u.name, u.enabled) for u in users] == [("ann", False)], f"{users}")
    await server.restart()
    async with AdminClient(server.address, server.token) as admin:
        after = {u.name: u.enabled for u in await admin.list_users()}
    assert after == {"ann": False}


async def test_seats_are_not_over_allocated_after_a_caller_gave_up_during_commit(
    server: RunningServer, vendor: Vendor
) -> None:
    async with AdminClient(server.address, server.token) as admin:
        await admin.install_license(vendor.issue(1, license_id="L-A"))
        await admin.add_users(["ann", "bob", "dave"])
        await admin.enable_users(["dave"])
        await admin.install_license(vendor.issue(1, license_id="L-B"))
        assert server.app is not None
        service = server.app.service
        # 2 seats, dave enabled; the admin's "enable ann" times out during the commit.
        await _give_up_during(server, "COMMIT", service.enable_users(["ann"]))
        # Every call from here on is acknowledged or refused by the server's own rules;
        # none is forced.
        await admin.disable_users(["dave"])
        with contextlib.suppress(OfficeStatusError):
            await admin.remove_license("L-B")
        with contextlib.suppress(SeatsExhaustedError):
            await admin.enable_users(["bob"])
    await server.restart()
    async with AdminClient(server.address, server.token) as admin:
        status = await admin.status()
    assert status.users_enabled <= status.seats_total, status.summary


async def test_changes_still_work_after_a_caller_gave_up_during_begin(
    server: RunningServer, vendor: Vendor
) -> None:
    async with AdminClient(server.address, server.token) as admin:
        await admin.install_license(vendor.issue(5))
        await admin.add_users(["ann", "bob"])
        assert server.app is not None
        service = server.app.service
        await _give_up_during(server, "BEGIN", service.enable_users(["ann"]))
        try:
            await admin.enable_users(["bob"])
            outcome = "enabled"
        except OfficeStatusError as exc:
            outcome = f"{exc.code}: {exc.message}"
    assert outcome == "enabled"
