"""The command: its options, the run with every process stopped at the end, the report."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

import scripts.benchmark
from scripts.benchmark import (
    BenchError,
    overhead,
    overhead_instructions,
    propagation,
    reference_instructions,
)
from scripts.benchmark.children import Children
from scripts.benchmark.machine import machine, machine_line
from scripts.benchmark.plan import FULL, QUICK, QUICK_SMOKE, SMOKE, Plan
from scripts.benchmark.report import (
    print_ratios,
    print_reference,
    print_scale,
    print_table,
    print_targets,
)
from scripts.benchmark.run import Results, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(scripts.benchmark.__doc__ or "").split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 s measurements")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="about a minute: the empty call, the minimal reference's and the real server's "
        "6.x login at 100,000 users, 3 interleaved rounds; no admin calls, no small database",
    )
    parser.add_argument(
        "--overhead",
        action="store_true",
        help="instead: logins with metrics and the usage history on against the same with "
        "them off (scripts/benchmark/overhead.py)",
    )
    parser.add_argument(
        "--propagation",
        action="store_true",
        help="instead: how long a change at one server takes to reach another over "
        "PostgreSQL, against the change seen at the server itself, and SQLite's "
        "(scripts/benchmark/propagation.py)",
    )
    parser.add_argument(
        "--changes", type=int, help="with --propagation: changes per database (default 200)"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instructions per call under valgrind's callgrind: the empty call, the minimal "
        "reference's and the real server's logins and heartbeats "
        "(scripts/benchmark/reference_instructions.py); with --overhead: per login, metrics "
        "off against on (scripts/benchmark/overhead_instructions.py)",
    )
    parser.add_argument(
        "--calls", type=int, help="with --instructions: counted calls per row (default 2000)"
    )
    parser.add_argument(
        "--users",
        type=int,
        help="with --instructions: users in the database (default 100000); with "
        "--propagation: users beside the probe (default 0)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--callers", help="comma-separated caller counts (default 16,64)")
    parser.add_argument(
        "--duration", type=float, help="seconds measured per row, over all rounds (default 10)"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds per row (default 3)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per round (default 1)")
    parser.add_argument(
        "--single-enable-seconds",
        type=float,
        help="stop enabling one call at a time after this long (default 60); the rest is projected",
    )
    parser.add_argument(
        "--channels",
        choices=("per-caller", "shared"),
        help="a channel (and connection) per caller, or one for all (default per-caller)",
    )
    parser.add_argument("--work-dir", type=Path, help="where the databases go (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the databases and the log")
    return parser


def _plan(args: argparse.Namespace) -> Plan:
    plans = {(False, False): FULL, (False, True): SMOKE, (True, False): QUICK}
    plan = plans.get((args.quick, args.smoke), QUICK_SMOKE)
    changes: dict[str, Any] = {}
    if args.callers:
        changes["callers"] = tuple(int(c) for c in args.callers.split(","))
    for option, name in (
        ("duration", "duration_seconds"),
        ("warmup", "warmup_seconds"),
        ("rounds", "rounds"),
        ("single_enable_seconds", "single_enable_seconds"),
        ("channels", "channels"),
    ):
        if getattr(args, option) is not None:
            changes[name] = getattr(args, option)
    return dataclasses.replace(plan, **changes)


def _sizes(args: argparse.Namespace, licenses: int) -> dict[str, Any]:
    """--calls and --users, as changes to an instruction count's plan."""
    changes: dict[str, Any] = {}
    if args.calls is not None:
        changes["calls"] = args.calls
    if args.users is not None:
        changes["users"] = args.users
        changes["licenses"] = min(licenses, args.users)
    return changes


async def _instructions(args: argparse.Namespace) -> int:
    """--instructions: the empty call, the minimal reference and the real server; with
    --overhead, metrics and the usage history off against on."""
    info = machine()
    children = Children()
    results: overhead_instructions.InstructionResults | reference_instructions.ReferenceResults
    if args.overhead:
        side_plan = overhead_instructions.SMOKE if args.smoke else overhead_instructions.FULL
        side_plan = dataclasses.replace(side_plan, **_sizes(args, side_plan.licenses))
        sides = overhead_instructions.InstructionResults(info, dataclasses.asdict(side_plan))

        def body(work: Path) -> Awaitable[None]:
            return overhead_instructions.run_instructions(side_plan, work, sides, children)

        def report() -> None:
            overhead_instructions.print_instructions(sides, side_plan)

        results = sides
    else:
        plan = reference_instructions.SMOKE if args.smoke else reference_instructions.FULL
        plan = dataclasses.replace(plan, **_sizes(args, plan.licenses))
        rows = reference_instructions.ReferenceResults(info, dataclasses.asdict(plan))

        def body(work: Path) -> Awaitable[None]:
            return reference_instructions.run_reference_instructions(plan, work, rows, children)

        def report() -> None:
            reference_instructions.print_reference_instructions(rows, plan)

        results = rows
    print(machine_line(info), flush=True)
    code = await _guarded(args, children, results, body)
    print()
    print(machine_line(info))
    print()
    report()
    if code == 0 and args.strict and not results.met:
        return 1
    return code


async def _overhead(args: argparse.Namespace) -> int:
    plan = overhead.SMOKE if args.smoke else overhead.FULL
    changes: dict[str, Any] = {}
    if args.callers:
        changes["callers"] = tuple(int(c) for c in args.callers.split(","))
    if args.rounds is not None:
        changes["rounds"] = args.rounds
    if args.duration is not None:
        changes["round_seconds"] = args.duration / max(1, changes.get("rounds", plan.rounds))
    if args.warmup is not None:
        changes["warmup_seconds"] = args.warmup
    plan = dataclasses.replace(plan, **changes)
    info = machine()
    print(machine_line(info), flush=True)
    results = overhead.OverheadResults(info, dataclasses.asdict(plan))
    children = Children()
    code = await _guarded(
        args, children, results, lambda work: overhead.run_overhead(plan, work, results, children)
    )
    print()
    print(machine_line(info))
    print()
    overhead.print_overhead(results, plan)
    return code


async def _propagation(args: argparse.Namespace) -> int:
    plan = propagation.SMOKE if args.smoke else propagation.FULL
    if args.changes is not None:
        plan = dataclasses.replace(plan, changes=args.changes)
    if args.users is not None:
        plan = dataclasses.replace(plan, users=args.users)
    info = machine()
    print(machine_line(info), flush=True)
    results = propagation.PropagationResults(info, dataclasses.asdict(plan))
    children = Children()
    code = await _guarded(
        args,
        children,
        results,
        lambda work: propagation.run_propagation(plan, work, results, children),
    )
    print()
    print(machine_line(info))
    print()
    if not code:
        propagation.print_propagation(results, plan)
    return code


async def _guarded(
    args: argparse.Namespace,
    children: Children,
    results: Results
    | propagation.PropagationResults
    | overhead.OverheadResults
    | overhead_instructions.InstructionResults
    | reference_instructions.ReferenceResults,
    body: Callable[[Path], Awaitable[None]],
) -> int:
    """Run `body` in a work folder with every process it starts stopped at the end, the
    JSON file written and the folder removed (kept with --keep or on an error)."""
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="officestatus-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    code = 0
    try:
        await body(work)
    except (BenchError, OSError, grpc.aio.AioRpcError) as exc:
        results.error = str(exc)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = 2
    except Exception as exc:
        results.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        await children.stop_all()
        results.pids = children.started
        loop.remove_signal_handler(signal.SIGTERM)
        if args.json is not None:
            args.json.write_text(json.dumps(dataclasses.asdict(results), indent=2) + "\n")
        if args.keep or code:
            print(f"kept: {work}", flush=True)
        elif args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return code


async def _main(args: argparse.Namespace) -> int:
    plan = _plan(args)
    info = machine()
    print(machine_line(info), flush=True)
    results = Results(info, dataclasses.asdict(plan))
    children = Children()
    code = await _guarded(args, children, results, lambda work: run(plan, work, results, children))
    print()
    print(machine_line(info))
    print()
    print_table(results.rows)
    if code:
        return code
    print_ratios(results.rows)
    if not plan.quick:
        print_scale(results.scale, plan)
    print_targets(results.targets, plan)
    missed = [t for t in results.targets if not t.met]
    print(f"\n{len(results.targets) - len(missed)} of {len(results.targets)} targets met")
    if not plan.quick:
        print_reference({r.id: r for r in results.rows}, plan)
    return 1 if missed and args.strict else 0


def main() -> int:
    """Run the command; its exit code."""
    args = _parser().parse_args()
    if sys.platform != "linux":
        print("error: the benchmark reads /proc and runs on Linux only", file=sys.stderr)
        return 2
    if args.quick and (args.overhead or args.instructions):
        print(
            "error: --quick is a part of the full run: not with --overhead or --instructions",
            file=sys.stderr,
        )
        return 2
    if args.propagation and (args.quick or args.overhead or args.instructions):
        print(
            "error: --propagation is a run of its own: not with --quick, --overhead or "
            "--instructions",
            file=sys.stderr,
        )
        return 2
    if args.propagation:
        return asyncio.run(_propagation(args))
    if args.instructions:
        return asyncio.run(_instructions(args))
    return asyncio.run(_overhead(args) if args.overhead else _main(args))
