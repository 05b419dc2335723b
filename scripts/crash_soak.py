#!/usr/bin/env python3
"""Crash soak: SIGKILL the real `officestatus-server` at many random moments.

Each round starts the server on a fresh data directory, streams admin calls from several
clients at once (installs, removals forced and not, enables, disables, refusals among
them), kills the server after a random delay, restarts it on the same data and checks that
no acknowledged change was lost, no refused change took effect, the seats were never
over-allocated except by a forced removal, the audit log has every change and the SQLite
file is intact (tests/crash.py has the workload and the checks).

With --postgres the rounds run over a PostgreSQL server of their own (Debian's binaries,
scripts/postgres.py; a fresh database each round) with --servers servers over it (2 by
default), the admin clients spread over them and every server killed at the same moment:
the seat rule and the audit chain must then hold across servers too.

    python scripts/crash_soak.py               # 50 rounds
    python scripts/crash_soak.py --rounds 200 --seed 7
    python scripts/crash_soak.py --smoke       # 2 quick rounds
    python scripts/crash_soak.py --postgres    # the same over PostgreSQL, two servers
    python scripts/crash_soak.py --postgres --servers 3 --smoke

Run it from the checkout with the project's virtual environment (the server command is
found next to this Python). Traffic goes to 127.0.0.1 only. Exits 1 on any violation, and
keeps the data directory of every round that had one.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.postgres import PostgresCluster  # noqa: E402
from tests.crash import OK, REFUSED, UNKNOWN, RoundConfig, RoundResult, run_round  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50, help="kill points (default 50)")
    parser.add_argument(
        "--seed", type=int, help="seed of the first round (default: from the clock, printed)"
    )
    parser.add_argument("--min-kill-delay", type=float, default=0.05, help="seconds (0.05)")
    parser.add_argument("--max-kill-delay", type=float, default=2.0, help="seconds (2.0)")
    parser.add_argument("--workers", type=int, default=4, help="admin clients at once (4)")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=900,
        help="start no round after this many seconds (default 900)",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="over a PostgreSQL server of its own, several servers over each database",
    )
    parser.add_argument(
        "--servers", type=int, default=2, help="with --postgres: servers over the database (2)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="2 quick rounds (kill within 0.5 s), for the tests"
    )
    parser.add_argument(
        "--work-dir", type=Path, help="where the rounds' data directories go (default: a temp dir)"
    )
    return parser


def _print_round(number: int, rounds: int, result: RoundResult) -> None:
    status = "ok" if not result.violations else f"{len(result.violations)} VIOLATIONS"
    print(f"round {number}/{rounds}: {result.summary()}: {status}", flush=True)
    for violation in result.violations:
        print(f"    violation: {violation}", flush=True)
    if result.violations:
        print("    last server output:", flush=True)
        for line in result.server_log[-20:]:
            print(f"      {line}", flush=True)


async def soak(args: argparse.Namespace) -> int:
    if not args.postgres:
        return await _soak(args, None)
    # Not under the work directory: PostgreSQL runs as `postgres` when this runs as root,
    # and the work directory is this user's alone.
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="officestatus-soak-pg-")))
    cluster.init()
    await cluster.start()
    try:
        return await _soak(args, cluster)
    finally:
        await cluster.close()


async def _soak(args: argparse.Namespace, cluster: PostgresCluster | None) -> int:
    rounds = 2 if args.smoke else args.rounds
    max_delay = min(args.max_kill_delay, 0.5) if args.smoke else args.max_kill_delay
    min_delay = min(args.min_kill_delay, max_delay)
    base_seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    where = "SQLite" if cluster is None else f"PostgreSQL, {args.servers} servers over it"
    print(
        f"crash soak ({where}): {rounds} rounds, {args.workers} admin clients, kill after "
        f"{min_delay:g}-{max_delay:g} s, seeds {base_seed}..{base_seed + rounds - 1}",
        flush=True,
    )
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="officestatus-crash-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: list[RoundResult] = []
    failed_rounds: list[str] = []
    kept: list[Path] = []
    for i in range(rounds):
        if time.monotonic() - started > args.time_limit:
            print(f"time limit of {args.time_limit:g} s reached after {i} rounds", flush=True)
            break
        seed = base_seed + i
        delay = random.Random(seed).uniform(min_delay, max_delay)
        round_dir = work / f"round-{i + 1:03d}-seed-{seed}"
        try:
            database, servers = None, 1
            if cluster is not None:
                database, servers = await cluster.create_database(), args.servers
            config = RoundConfig(
                seed=seed,
                kill_after=delay,
                workers=args.workers,
                database=database,
                servers=servers,
            )
            result = await run_round(round_dir, config)
        except Exception:
            failed_rounds.append(f"round {i + 1} (seed {seed}) could not run")
            print(f"round {i + 1}/{rounds}: seed {seed}: ERROR", flush=True)
            traceback.print_exc()
            kept.append(round_dir)
            continue
        results.append(result)
        _print_round(i + 1, rounds, result)
        if result.violations:
            kept.append(round_dir)
        else:
            shutil.rmtree(round_dir, ignore_errors=True)

    elapsed = time.monotonic() - started
    calls = [c for r in results for c in r.calls]
    outcomes = collections.Counter(c.outcome for c in calls)
    reasons = collections.Counter(c.reason for c in calls if c.outcome == REFUSED)
    violations = sum(len(r.violations) for r in results)
    delays = [r.config.kill_after for r in results]
    print("\nsummary", flush=True)
    print(f"  rounds: {len(results)} run, {len(failed_rounds)} could not run", flush=True)
    if delays:
        print(
            f"  kill points: {min(delays):.2f}-{max(delays):.2f} s after traffic started",
            flush=True,
        )
    print(
        f"  calls: {len(calls)} ({outcomes[OK]} acknowledged, {outcomes[REFUSED]} refused, "
        f"{outcomes[UNKNOWN]} unanswered: {sum(r.in_flight_at_kill for r in results)} in "
        f"flight at the kill, {sum(r.in_flight_committed for r in results)} of them "
        "committed)",
        flush=True,
    )
    print("  refusals: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())), flush=True)
    print(f"  violations: {violations}", flush=True)
    per_round = elapsed / len(results) if results else 0
    print(f"  time: {elapsed:.1f} s ({per_round:.1f} s a round)", flush=True)
    for problem in failed_rounds:
        print(f"  {problem}", flush=True)
    if kept:
        print(f"  data directories kept for inspection: {', '.join(map(str, kept))}", flush=True)
    elif args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if violations or failed_rounds or not results else 0


def main() -> int:
    args = _parser().parse_args()
    if args.rounds < 1 or args.workers < 1 or args.max_kill_delay <= 0 or args.servers < 1:
        print(
            "error: --rounds, --workers, --servers and --max-kill-delay must be positive",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
