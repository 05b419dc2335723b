"""The whole run: prepare the databases, start the servers, measure every row in
interleaved rounds, the admin calls at size, then the targets."""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from officestatus_server.core.keys import SigningKey
from scripts.benchmark import BenchError
from scripts.benchmark.children import LOAD_SCRIPT, Children, real_server_command
from scripts.benchmark.database import prepare_database
from scripts.benchmark.machine import rss_mb
from scripts.benchmark.measure import Row, Sample, add_ratios, measure_once, summarise
from scripts.benchmark.plan import Plan
from scripts.benchmark.scale import admin_scale
from scripts.benchmark.targets import Target, targets
from scripts.benchmark.workloads import (
    Workload,
    constant_login_reply,
    constant_login_workload,
    empty_workload,
    heartbeat_workload,
    login_workload,
    open_sessions,
    status_workload,
)


@dataclass
class Results:
    """Everything one run found, as the JSON file has it."""

    machine: dict[str, Any]
    plan: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    scale: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    error: str | None = None
    # Every process the run started (all stopped by the time the file is written).
    pids: list[int] = field(default_factory=list)

    def to_json(self) -> str:
        """The results as the --json file has them."""
        return json.dumps(dataclasses.asdict(self), indent=2)


def _workloads_order(callers: int, plan: Plan) -> Iterator[tuple[str, Workload | None]]:
    """(server, workload) in the order they are measured; None: heartbeats, whose
    sessions are opened just before."""
    seats = plan.seats_total
    yield "bare", empty_workload()
    yield "bare", empty_workload(protobuf=True)
    yield "bare", constant_login_workload(callers, constant_login_reply(seats))
    yield "small", login_workload(6, callers, plan.small_users)
    yield "large", login_workload(3, callers, seats)
    yield "large", login_workload(6, callers, seats)
    yield "large", None
    yield "large", status_workload(seats)


async def run(plan: Plan, work: Path, results: Results, children: Children) -> None:
    """The whole benchmark; fills `results` as it goes."""
    plan.check()
    signing = SigningKey.generate("kms-bench")
    vendor_key = work / "kms-bench.pub"
    vendor_key.write_text(signing.public_text())
    small_dir, large_dir = work / "small", work / "large"
    print(f"preparing the databases in {work} ...", flush=True)
    started = time.perf_counter()
    await prepare_database(
        small_dir, signing, plan.small_users, 1, plan.small_users, plan.small_enabled
    )
    await prepare_database(
        large_dir, signing, plan.users, plan.licenses, plan.seats_per_license, plan.enabled_at_start
    )
    prepare_seconds = time.perf_counter() - started
    print(f"  done in {prepare_seconds:.1f} s", flush=True)

    with (work / "servers.log").open("ab") as log:
        bare = await children.start_server(
            "bare grpc.aio",
            [
                sys.executable,
                str(LOAD_SCRIPT),
                "serve-empty",
                "--reply-hex",
                constant_login_reply(plan.seats_total).hex(),
            ],
            log,
        )
        small = await children.start_server(
            f"{plan.small_users:,} users", real_server_command(small_dir, vendor_key), log
        )
        small_rss = rss_mb(small.pid)
        large_runs: list[float] = []
        for attempt in range(plan.startup_runs):
            large = await children.start_server(
                f"{plan.users:,} users", real_server_command(large_dir, vendor_key), log
            )
            large_runs.append(large.startup_seconds)
            if attempt < plan.startup_runs - 1:
                await children.stop_server(large)
        large_rss = rss_mb(large.pid)
        print(
            f"servers up: start-up {bare.startup_seconds:.2f} s (bare), "
            f"{small.startup_seconds:.2f} s ({small.name}), "
            f"{', '.join(f'{s:.2f}' for s in large_runs)} s ({large.name})",
            flush=True,
        )
        servers = {"bare": bare, "small": small, "large": large}
        print("measuring ...", flush=True)
        for callers in plan.callers:
            samples: dict[str, list[Sample]] = {}
            workloads: dict[str, Workload] = {}
            for number in range(1, plan.rounds + 1):
                for key, workload in _workloads_order(callers, plan):
                    server = servers[key]
                    if workload is None:
                        workload = heartbeat_workload(await open_sessions(server.address, callers))
                    row_id = f"{workload.key}/{key}/{callers}"
                    sample = await measure_once(children, server, workload, callers, plan)
                    samples.setdefault(row_id, []).append(sample)
                    workloads[row_id] = workload
                    print(
                        f"  round {number}/{plan.rounds}: {workload.label:<22} {server.name:<14} "
                        f"{callers:>3} callers: {sample.calls / sample.seconds:7.0f} calls/s",
                        flush=True,
                    )
            for row_id, row_samples in samples.items():
                server = servers[row_id.split("/")[1]]
                results.rows.append(
                    summarise(row_id, workloads[row_id], server, callers, row_samples)
                )
        add_ratios(results.rows)
        admin = await admin_scale(large, large_dir, plan)
        results.scale = {
            "prepare_seconds": prepare_seconds,
            "startup_seconds": {
                "bare": bare.startup_seconds,
                "small": small.startup_seconds,
                "large": large_runs,
                "large_median": statistics.median(large_runs),
            },
            "rss_mb": {
                "at_startup": large_rss,
                "after_load": rss_mb(large.pid),
                "small_at_startup": small_rss,
            },
            "admin": admin,
        }
        for server in servers.values():
            await children.stop_server(server)
            if server.process.returncode != 0:
                raise BenchError(
                    f"{server.name} exited with {server.process.returncode}; see {work}/servers.log"
                )
    results.targets = targets({r.id: r for r in results.rows}, results.scale, plan)
