"""`scripts/bench.py --instructions`: instructions per call (callgrind) of the empty call,
the minimal reference's logins and heartbeats, and the real server's, which the machine's
load does not move as it moves throughput and CPU seconds.

Three servers, each run under callgrind (scripts/benchmark/instructions.py) in a process
of its own, as the full run starts them:

- "bare": the bare grpc.aio server (scripts/bench_load.py serve-empty), the empty call;
- "minimal": the minimal reference (scripts/bench_load.py serve-minimal) with `users`
  users, a 6.x login, a 3.x login and a 5.x heartbeat;
- "real": `officestatus-server` on a fresh copy of one prepared database of `users`
  users, all enabled, and `licenses` licenses (as --overhead --instructions prepares it),
  with its default settings, the same three workloads.

For each workload the server gets `warmup` calls, its counts are zeroed, then `calls`
calls one at a time (cycling through `login_users` users, or as many 5.x sessions opened
just before the warm-up), then its counts are dumped: instructions per call. The servers take
turns (bare, minimal, real, bare, minimal, real), each run on a server started for it,
so each row's runs show how well the count repeats. Each row is given against the empty
call and, for the real server, against the minimal reference's same workload; the target:
a 6.x login at most 1.15x the instructions of an empty call.
"""

from __future__ import annotations

import shutil
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.benchmark.children import (
    LOAD_SCRIPT,
    Children,
    minimal_command,
    real_server_command,
)
from scripts.benchmark.instructions import Count, Counter, prepare_counted_run
from scripts.benchmark.overhead_instructions import spread
from scripts.benchmark.plan import Sizes
from scripts.benchmark.workloads import (
    Workload,
    empty_workload,
    heartbeat_workload,
    login_workload,
    open_sessions,
)

# Instructions per 6.x login on the real server against an empty call's, at most.
LIMIT = 1.15
SERVERS = {"bare": "bare grpc.aio", "minimal": "minimal reference", "real": "real server"}
# Each server's workloads, counted in this order on each of its runs.
WORKLOADS = {
    "bare": ("empty",),
    "minimal": ("login-6.x", "login-3.x", "heartbeat-5.x"),
    "real": ("login-6.x", "login-3.x", "heartbeat-5.x"),
}


@dataclass(frozen=True)
class ReferencePlan(Sizes):
    """Sizes, counts and the servers' turns."""

    calls: int = 2_000
    warmup: int = 200
    # Different enabled users the logins cycle through (and 5.x sessions heartbeating).
    login_users: int = 100
    turns: tuple[str, ...] = ("bare", "minimal", "real", "bare", "minimal", "real")
    smoke: bool = False


FULL = ReferencePlan()
SMOKE = ReferencePlan(users=200, licenses=10, calls=60, warmup=20, login_users=10, smoke=True)


@dataclass
class CountRow:
    """One workload on one server: instructions per call over its runs, and the ratios."""

    id: str
    workload: str
    server: str
    calls: int
    per_call: float
    # Instructions per call of each run, each on a server of its own: how well it repeats.
    runs: list[float] = field(default_factory=list)
    spread: float = 0.0
    # Against the empty call's instructions per call, and (the real server's rows) the
    # minimal reference's same workload (0 where there is none).
    empty_ratio: float = 0.0
    minimal_ratio: float = 0.0
    # Wall seconds of each run's counted calls (under callgrind).
    seconds: list[float] = field(default_factory=list)


@dataclass
class ReferenceResults:
    """What --instructions found, as its JSON file has it."""

    machine: dict[str, Any]
    plan: dict[str, Any]
    rows: list[CountRow] = field(default_factory=list)
    limit: float = LIMIT
    met: bool | None = None
    verdict: str = ""
    error: str | None = None
    pids: list[int] = field(default_factory=list)


def _workload(key: str, plan: ReferencePlan, sessions: list[str]) -> Workload:
    if key == "empty":
        return empty_workload()
    if key == "heartbeat-5.x":
        return heartbeat_workload(sessions)
    return login_workload(6 if key == "login-6.x" else 3, plan.login_users, plan.seats_total)


async def run_reference_instructions(
    plan: ReferencePlan, work: Path, results: ReferenceResults, children: Children
) -> None:
    """The whole run; fills `results` as it goes."""
    vendor_key, prepared = await prepare_counted_run(
        work, plan.users, plan.licenses, plan.seats_per_license
    )
    counts: dict[tuple[str, str], list[Count]] = {}
    with (work / "servers.log").open("ab") as log:
        for number, server in enumerate(plan.turns, 1):
            if server == "bare":
                command = [sys.executable, str(LOAD_SCRIPT), "serve-empty"]
            elif server == "minimal":
                command = minimal_command(plan.users, plan.seats_total)
            else:
                folder = work / f"run{number}-real"
                shutil.copytree(prepared, folder)
                command = real_server_command(folder, vendor_key)
            print(
                f"run {number}/{len(plan.turns)}: {SERVERS[server]}, starting under callgrind ...",
                flush=True,
            )
            counter = await Counter.start(
                children, SERVERS[server], command, work / f"callgrind-{number}-{server}.out", log
            )
            print(f"  listening after {counter.server.startup_seconds:.0f} s", flush=True)
            try:
                for key in WORKLOADS[server]:
                    # Opened after the logins: the real server ends a user's oldest
                    # sessions beyond a number of machines, and the logins open sessions.
                    sessions = (
                        await open_sessions(counter.server.address, plan.login_users)
                        if key == "heartbeat-5.x"
                        else []
                    )
                    workload = _workload(key, plan, sessions)
                    count = await counter.count(workload, calls=plan.calls, warmup=plan.warmup)
                    counts.setdefault((key, server), []).append(count)
                    print(
                        f"  {workload.label}: {count.per_call:,.0f} instructions per call "
                        f"({count.calls} calls in {count.seconds:.0f} s)",
                        flush=True,
                    )
            finally:
                await counter.stop()
    results.rows = _rows(counts, plan)
    _verdict(results)


def _rows(counts: dict[tuple[str, str], list[Count]], plan: ReferencePlan) -> list[CountRow]:
    labels = {key: _workload(key, plan, []).label for key in ("empty", *WORKLOADS["real"])}
    rows: dict[str, CountRow] = {}
    for server in SERVERS:
        for key in WORKLOADS[server]:
            found = counts.get((key, server), [])
            if not found:
                continue
            runs = [c.per_call for c in found]
            rows[f"{key}/{server}"] = CountRow(
                id=f"{key}/{server}",
                workload=labels[key],
                server=SERVERS[server],
                calls=plan.calls,
                per_call=statistics.fmean(runs),
                runs=runs,
                spread=spread(runs),
                seconds=[c.seconds for c in found],
            )
    empty = rows.get("empty/bare")
    for row in rows.values():
        if empty is not None:
            row.empty_ratio = row.per_call / empty.per_call
        key, server = row.id.split("/")
        minimal = rows.get(f"{key}/minimal")
        if server == "real" and minimal is not None:
            row.minimal_ratio = row.per_call / minimal.per_call
    return list(rows.values())


def _verdict(results: ReferenceResults) -> None:
    rows = {r.id: r for r in results.rows}
    login, empty = rows.get("login-6.x/real"), rows.get("empty/bare")
    if login is None or empty is None:
        return
    results.met = login.empty_ratio <= LIMIT
    results.verdict = (
        f"instructions per 6.x login on the real server: {login.empty_ratio:.3f}x an empty "
        f"call's ({login.per_call:,.0f} vs {empty.per_call:,.0f}); target at most "
        f"{LIMIT:.2f}x: {'met' if results.met else 'NOT MET'}"
    )


def _ratio(value: float) -> str:
    return f"{value:.3f}" if value else "-"


def print_reference_instructions(results: ReferenceResults, plan: ReferencePlan) -> None:
    """The table: instructions per call, against the empty call and the minimal
    reference, each row's repeatability; then the target."""
    head = (
        f"{'workload':<14} {'server':<17} {'calls':>6} {'instr/call':>11} {'x empty':>8} "
        f"{'x minimal':>9} {'runs':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results.rows:
        print(
            f"{r.workload:<14} {r.server:<17} {r.calls:>6} {r.per_call:>11,.0f} "
            f"{_ratio(r.empty_ratio):>8} {_ratio(r.minimal_ratio):>9} "
            f"{len(r.runs)}x{100 * r.spread:>5.2f}%"
        )
    print(
        "instr/call: instructions per call executed by the whole server process (callgrind), "
        "the mean of the row's runs; x empty: against the empty call's; x minimal: against "
        "the minimal reference's same workload; runs: how many runs, each on a server of its "
        "own, and their spread ((highest - lowest) / mean)."
    )
    if results.verdict:
        note = " (smoke sizes: not meaningful)" if plan.smoke else ""
        print(f"\n{results.verdict}{note}")
