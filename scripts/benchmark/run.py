"""The whole run: prepare the databases, start the servers (the bare one, the minimal
reference, the real ones), measure every row in interleaved rounds, the admin calls at
size, then the targets. --quick runs a part of it: the empty call, the minimal
reference's and the real server's 6.x login, no admin calls."""

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
from scripts.benchmark.children import (
    LOAD_SCRIPT,
    Children,
    Server,
    minimal_command,
    real_server_command,
)
from scripts.benchmark.database import prepare_database
from scripts.benchmark.machine import rss_mb
from scripts.benchmark.measure import (
    MINIMAL,
    Row,
    Sample,
    add_ratios,
    measure_once,
    summarise,
)
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
    if plan.quick:
        yield MINIMAL, login_workload(6, callers, seats)
        yield "large", login_workload(6, callers, seats)
        return
    yield "bare", empty_workload(protobuf=True)
    yield "bare", constant_login_workload(callers, constant_login_reply(seats))
    yield MINIMAL, login_workload(6, callers, seats)
    yield MINIMAL, login_workload(3, callers, seats)
    yield MINIMAL, None
    yield "small", login_workload(6, callers, plan.small_users)
    yield "large", login_workload(3, callers, seats)
    yield "large", login_workload(6, callers, seats)
    yield "large", None
    yield "large", status_workload(seats)


async def run(plan: Plan, work: Path, results: Results, children: Children) -> None:
    """The whole benchmark (or --quick's part of it); fills `results` as it goes."""
    plan.check()
    signing = SigningKey.generate("kms-bench")
    vendor_key = work / "kms-bench.pub"
    vendor_key.write_text(signing.public_text())
    small_dir, large_dir = work / "small", work / "large"
    print(f"preparing the databases in {work} ...", flush=True)
    started = time.perf_counter()
    if not plan.quick:
        await prepare_database(
            small_dir, signing, plan.small_users, 1, plan.small_users, plan.small_enabled
        )
    await prepare_database(
        large_dir, signing, plan.users, plan.licenses, plan.seats_per_license, plan.enabled_at_start
    )
    prepare_seconds = time.perf_counter() - started
    print(f"  done in {prepare_seconds:.1f} s", flush=True)

    with (work / "servers.log").open("ab") as log:
        servers = {
            "bare": await children.start_server(
                "bare grpc.aio",
                [
                    sys.executable,
                    str(LOAD_SCRIPT),
                    "serve-empty",
                    "--reply-hex",
                    constant_login_reply(plan.seats_total).hex(),
                ],
                log,
            ),
            MINIMAL: await children.start_server(
                "minimal reference", minimal_command(plan.users, plan.seats_total), log
            ),
        }
        small_rss = 0.0
        if not plan.quick:
            servers["small"] = await children.start_server(
                f"{plan.small_users:,} users", real_server_command(small_dir, vendor_key), log
            )
            small_rss = rss_mb(servers["small"].pid)
        large_runs: list[float] = []
        for attempt in range(plan.startup_runs):
            large = await children.start_server(
                f"{plan.users:,} users", real_server_command(large_dir, vendor_key), log
            )
            large_runs.append(large.startup_seconds)
            if attempt < plan.startup_runs - 1:
                await children.stop_server(large)
        servers["large"] = large
        large_rss = rss_mb(large.pid)
        print(
            "servers up: start-up "
            + ", ".join(
                f"{s.startup_seconds:.2f} s ({s.name})" for k, s in servers.items() if k != "large"
            )
            + f", {', '.join(f'{s:.2f}' for s in large_runs)} s ({large.name})",
            flush=True,
        )
        print("measuring ...", flush=True)
        for callers in plan.callers:
            await _measure(plan, callers, servers, results, children)
        add_ratios(results.rows)
        results.scale = {
            "prepare_seconds": prepare_seconds,
            "startup_seconds": {
                **{k: s.startup_seconds for k, s in servers.items() if k != "large"},
                "large": large_runs,
                "large_median": statistics.median(large_runs),
            },
            "rss_mb": {"at_startup": large_rss},
        }
        if not plan.quick:
            results.scale["admin"] = await admin_scale(large, large_dir, plan)
            results.scale["rss_mb"]["small_at_startup"] = small_rss
        results.scale["rss_mb"]["after_load"] = rss_mb(large.pid)
        for server in servers.values():
            await children.stop_server(server)
            if server.process.returncode != 0:
                raise BenchError(
                    f"{server.name} exited with {server.process.returncode}; see {work}/servers.log"
                )
    results.targets = targets({r.id: r for r in results.rows}, results.scale, plan)


async def _measure(
    plan: Plan, callers: int, servers: dict[str, Server], results: Results, children: Children
) -> None:
    """Every row with `callers` callers, in interleaved rounds."""
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
                f"  round {number}/{plan.rounds}: {workload.label:<22} {server.name:<17} "
                f"{callers:>3} callers: {sample.calls / sample.seconds:7.0f} calls/s",
                flush=True,
            )
    for row_id, row_samples in samples.items():
        server = servers[row_id.split("/")[1]]
        results.rows.append(summarise(row_id, workloads[row_id], server, callers, row_samples))
