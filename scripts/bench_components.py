#!/usr/bin/env python3
"""Instructions per call of the parts of a login, counted in the server's own code
without gRPC: what is left of a login's cost against the minimal reference, part by part.

    python scripts/bench_components.py [--calls 3000] [--json FILE] [--smoke]

Each part runs in a Python process of its own under valgrind's callgrind
(PYTHONHASHSEED=0): the license service is started on a copy of a prepared database of
1,000 users, all enabled (scripts/benchmark/database.py), 300 of each kind of call warm it
up, then the part runs `calls` times, cycling through 100 users as the benchmark's logins
do. The same process with 0 calls is counted too; the difference, divided by `calls`, is
the part's instructions per call (start-up, loading and the warm-up cancel out). The
collector is set as the server sets it once started. Two processes run at a time.

The parts (`PARTS`): a whole 6.x or 3.x login as SeatService.Login answers it (the
request parsed, the reply written: what the gRPC layer hands to and takes from it); the
service's login alone; opening a session within the bounds, and at the per-user bound of
10 sessions, which the benchmark's logins reach (100 users logging in again and again);
a login decision made anew and one kept (DecisionCache); and, for scale, parsing a login
request and writing a reply, as the minimal reference does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.benchmark.instructions import ENVIRONMENT, dump_total, have_callgrind  # noqa: E402

PARTS = {
    "login-6.x": "a 6.x login, SeatService.Login, parsed to written",
    "login-3.x": "a 3.x login, SeatService.Login, parsed to written",
    "service-6.x": "the service's login, 6.x (decision, tally, session)",
    "service-3.x": "the service's login, 3.x (decision, tally, last login)",
    "open-free": "opening a session within the bounds",
    "open-bound": "opening a session at the per-user bound (one ended)",
    "decide": "a login decision made anew (decide_login)",
    "decide-kept": "a login decision kept (DecisionCache)",
    "parse-write": "a login request parsed, a reply written (no logic)",
}
USERS = 1_000
WARMUP = 300


async def _child(part: str, calls: int, prepared: Path, vendor_key: Path) -> None:
    """Run `part` `calls` times in this process (under callgrind, from the parent)."""
    from officestatus.licensing import seat_service_pb2 as pb
    from officestatus_server.app import GC_YOUNG_OBJECTS, ServerApp
    from officestatus_server.config import ServerConfig
    from officestatus_server.core.login import decide_login
    from officestatus_server.core.sessions import Seen, SessionTable
    from officestatus_server.core.versions import Release
    from officestatus_server.rpc.seat import SeatServicer

    data = Path(tempfile.mkdtemp(prefix="officestatus-part-")) / "data"
    shutil.copytree(prepared, data)
    config = ServerConfig(data_dir=data, vendor_key_files=(vendor_key,), usage_flush_seconds=0)
    service = ServerApp(config).service
    await service.start(None)
    # The collector as the server sets it once it has started (app.py).
    gc.freeze()
    gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])
    seat = SeatServicer(service)
    names = [f"user{i + 1:06d}" for i in range(100)]
    requests = {
        release: [
            pb.LoginRequest(
                user_name=name,
                client_version=version,
                machine_name="" if release == 3 else f"BENCH-PC-{i + 1:03d}",
            ).SerializeToString()
            for i, name in enumerate(names)
        ]
        for release, version in ((3, "3.4.2"), (6, "6.0.0"))
    }
    table = SessionTable(os.urandom(32), 60.0)
    seen = Seen("BENCH-PC", "6.0.0", 1.0)
    keys = [f"USER{i:06d}" for i in range(100_000)]

    async def login(release: int, n: int) -> None:
        batch = requests[release]
        for i in range(n):
            request = pb.LoginRequest.FromString(batch[i % 100])
            (await seat.Login(request, None)).SerializeToString()  # type: ignore[arg-type]

    def service_login(release: int, n: int) -> None:
        for i in range(n):
            service.login(names[i % 100], Release(release), "BENCH-PC-001", "6.0.0")

    # Warm-up enough for 100 users to reach the bound of 10 sessions each.
    opened = 1_100

    def open_sessions(users: int, n: int, offset: int) -> None:
        for i in range(offset, offset + n):
            table.open(keys[i % users], 1.0, 6, seen)

    def decide(n: int) -> None:
        registry, now = service.registry, service.now()
        for i in range(n):
            decide_login(registry, names[i % 100], now)

    def decide_kept(n: int) -> None:
        registry, now = service.registry, service.now()
        for i in range(n):
            service._decisions.decide(registry, names[i % 100], now)

    def parse_write(n: int) -> None:
        batch = requests[6]
        for i in range(n):
            pb.LoginRequest.FromString(batch[i % 100])
            pb.LoginReply(granted=True, message="Welcome, user000001.").SerializeToString()

    async def run(n: int) -> None:
        if part in ("login-6.x", "login-3.x"):
            await login(int(part[-3]), n)
        elif part in ("service-6.x", "service-3.x"):
            service_login(int(part[-3]), n)
        elif part in ("open-free", "open-bound"):
            # After the warm-up's sessions: the bound is reached at once with 100 users.
            open_sessions(100_000 if part == "open-free" else 100, n, opened)
        elif part == "decide":
            decide(n)
        elif part == "decide-kept":
            decide_kept(n)
        else:
            parse_write(n)

    await login(6, WARMUP)
    await login(3, WARMUP)
    service_login(6, WARMUP)
    open_sessions(100 if part == "open-bound" else 100_000, opened, 0)
    decide_kept(WARMUP)
    await run(calls)
    sys.stdout.flush()
    # The service's threads are not stopped: the count ends here, at once.
    os._exit(0)


async def _count(part: str, calls: int, prepared: Path, vendor_key: Path, out: Path) -> int:
    """The total instructions of one child process under callgrind."""
    command = [
        shutil.which("valgrind") or "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(SCRIPT),
        "child",
        part,
        str(calls),
        str(prepared),
        str(vendor_key),
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        env={**os.environ, **ENVIRONMENT},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"error: {part} ({calls} calls) failed: {err.decode()[-2000:]}")
    return dump_total(out)


async def _parent(args: argparse.Namespace) -> int:
    from officestatus_server.core.keys import SigningKey
    from scripts.benchmark.database import prepare_database

    missing = have_callgrind()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    parts = ["parse-write", "decide-kept"] if args.smoke else list(PARTS)
    # Enough calls that they, not the process's own noise (timers, threads), make the
    # difference: a kept decision's 4,000 instructions need some 1,000 calls to stand out.
    calls = 1_000 if args.smoke else args.calls
    work = Path(tempfile.mkdtemp(prefix="officestatus-parts-"))
    try:
        signing = SigningKey.generate("kms-bench")
        vendor_key = work / "kms-bench.pub"
        vendor_key.write_text(signing.public_text())
        prepared = work / "prepared"
        await prepare_database(prepared, signing, USERS, 10, USERS // 10, USERS)
        gate = asyncio.Semaphore(2)

        async def per_call(part: str) -> float:
            async with gate:
                none = await _count(part, 0, prepared, vendor_key, work / f"{part}-0.out")
            async with gate:
                some = await _count(part, calls, prepared, vendor_key, work / f"{part}-n.out")
            return (some - none) / calls

        found = dict(zip(parts, await asyncio.gather(*(per_call(p) for p in parts)), strict=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'part':<12} {'instr/call':>11}  what")
    print("-" * 78)
    for part, value in found.items():
        print(f"{part:<12} {value:>11,.0f}  {PARTS[part]}")
    print(
        f"instr/call: instructions of {calls:,} calls less those of none, divided by "
        f"{calls:,} (callgrind, a database of {USERS:,} users)."
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"calls": calls, "parts": found}, indent=2) + "\n")
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        part, calls, prepared, vendor_key = sys.argv[2:6]
        asyncio.run(_child(part, int(calls), Path(prepared), Path(vendor_key)))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per part (default 3000)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--smoke", action="store_true", help="two parts, 1000 calls (the tests)")
    args = parser.parse_args()
    return asyncio.run(_parent(args))


if __name__ == "__main__":
    sys.exit(main())
