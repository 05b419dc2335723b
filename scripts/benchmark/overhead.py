"""`scripts/bench.py --overhead`: what metrics and the usage history cost the logins.

Two real servers on copies of one prepared database, each in a process of its own:

- "off": no HTTP listener (so no duration histograms either), and, where the server has
  these settings, the usage history off (`--usage-flush-seconds 0`) and the log at
  `--log-level warning`;
- "on": `--http-listen 127.0.0.1:0`, scraped over HTTP every `scrape_seconds` during
  every measured window (far more often than a Prometheus' 15 s), the usage history
  flushed every `flush_seconds` (more often than its default minute), the log at its
  default level.

The same load generator drives both with the same logins (6.x and 3.x, each caller an
enabled user of its own) in interleaved rounds whose order alternates (on first, then off
first), so the machine's slow moments fall on both alike. Each row reports both sides'
throughput, p99 and server CPU per call, and their ratios (on against off) over all
rounds, with the spread of the ratios of the rounds taken pairwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from officestatus_server.core.keys import SigningKey
from scripts.benchmark import BenchError
from scripts.benchmark.children import Children, Server, real_server_command
from scripts.benchmark.database import prepare_database
from scripts.benchmark.measure import Row, Sample, measure_once, summarise
from scripts.benchmark.plan import Plan
from scripts.benchmark.workloads import Workload, login_workload
from scripts.processes import SERVER_COMMAND

_METRICS_LINE = re.compile(r"^metrics: (http://\S+/metrics)$")
LIMIT = 0.05


@dataclass(frozen=True)
class OverheadPlan:
    """Sizes, durations and how often the "on" server is scraped and flushes."""

    users: int = 100_000
    licenses: int = 1_000
    callers: tuple[int, ...] = (16, 64)
    releases: tuple[int, ...] = (6, 3)
    rounds: int = 6
    # Measured seconds per round and side.
    round_seconds: float = 5.0
    warmup_seconds: float = 1.0
    scrape_seconds: float = 1.0
    flush_seconds: int = 5
    smoke: bool = False

    @property
    def seats_per_license(self) -> int:
        """Enough seats for every user."""
        return -(-self.users // self.licenses)

    def measuring_plan(self) -> Plan:
        """The plan `measure_once` reads its durations from."""
        return dataclasses.replace(
            Plan(),
            duration_seconds=self.round_seconds,
            rounds=1,
            warmup_seconds=self.warmup_seconds,
        )


FULL = OverheadPlan()
SMOKE = OverheadPlan(
    users=200,
    licenses=10,
    callers=(4,),
    releases=(6,),
    rounds=2,
    round_seconds=0.5,
    warmup_seconds=0.2,
    scrape_seconds=0.2,
    flush_seconds=1,
    smoke=True,
)


@dataclass
class OverheadRow:
    """One workload with N callers: both sides, and on against off."""

    id: str
    workload: str
    callers: int
    off: Row
    on: Row
    throughput_ratio: float
    p99_ratio: float
    cpu_per_call_ratio: float
    # Each round's on/off throughput ratio (the rounds taken pairwise): the spread.
    round_throughput_ratios: list[float]
    round_cpu_ratios: list[float]


@dataclass
class OverheadResults:
    """What --overhead found, as its JSON file has it."""

    machine: dict[str, Any]
    plan: dict[str, Any]
    settings: dict[str, list[str]] = field(default_factory=dict)
    rows: list[OverheadRow] = field(default_factory=list)
    scrapes: int = 0
    scrape_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    pids: list[int] = field(default_factory=list)


def server_options() -> str:
    """The server command's --help: which settings this server has."""
    done = subprocess.run(
        [SERVER_COMMAND, "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def side_options(plan: OverheadPlan, help_text: str) -> dict[str, list[str]]:
    """The options of each side, with the settings this server has."""
    off: list[str] = []
    on = ["--http-listen", "127.0.0.1:0"]
    if "--usage-flush-seconds" in help_text:
        off += ["--usage-flush-seconds", "0"]
        on += ["--usage-flush-seconds", str(plan.flush_seconds)]
    if "--log-level" in help_text:
        off += ["--log-level", "warning"]
    return {"off": off, "on": on}


class Scraper:
    """Scrapes one server's /metrics now and then while it is measured."""

    def __init__(self, url: str, every: float) -> None:
        self.url = url
        self.every = every
        self.seconds: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def once(self, session: aiohttp.ClientSession) -> None:
        started = time.perf_counter()
        async with session.get(self.url) as response:
            body = await response.read()
            if response.status != 200 or b"officestatus_logins_granted_total" not in body:
                raise BenchError(f"a scrape of {self.url} answered {response.status}")
        self.seconds.append(time.perf_counter() - started)

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            while True:
                await self.once(session)
                await asyncio.sleep(self.every)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        if task.done():
            task.result()  # a failed scrape fails the run
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def metrics_url(server: Server, timeout: float = 30) -> str:
    """The "metrics: URL" line of the server's banner."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.output:
            match = _METRICS_LINE.match(line.strip())
            if match:
                return match.group(1)
        await asyncio.sleep(0.05)
    raise BenchError(f"{server.name} printed no metrics address")


def _row(row_id: str, workload: Workload, callers: int, sides: dict[str, Row]) -> OverheadRow:
    off, on = sides["off"], sides["on"]
    pairs = list(zip(on.round_throughputs, off.round_throughputs, strict=True))
    return OverheadRow(
        id=row_id,
        workload=workload.label,
        callers=callers,
        off=off,
        on=on,
        throughput_ratio=on.throughput / off.throughput,
        p99_ratio=on.p99_ms / off.p99_ms if off.p99_ms else 0.0,
        cpu_per_call_ratio=on.server_cpu_us_per_call / off.server_cpu_us_per_call,
        round_throughput_ratios=[a / b for a, b in pairs],
        round_cpu_ratios=[],
    )


async def run_overhead(
    plan: OverheadPlan, work: Path, results: OverheadResults, children: Children
) -> None:
    """The whole --overhead run; fills `results` as it goes."""
    signing = SigningKey.generate("kms-bench")
    vendor_key = work / "kms-bench.pub"
    vendor_key.write_text(signing.public_text())
    print(f"preparing the database in {work} ...", flush=True)
    off_dir, on_dir = work / "off", work / "on"
    await prepare_database(
        off_dir, signing, plan.users, plan.licenses, plan.seats_per_license, plan.users
    )
    shutil.copytree(off_dir, on_dir)
    results.settings = side_options(plan, server_options())
    measuring = plan.measuring_plan()
    seats = plan.seats_per_license * plan.licenses
    with (work / "servers.log").open("ab") as log:
        servers = {
            side: await children.start_server(
                f"metrics {side}",
                [*real_server_command(folder, vendor_key), *results.settings[side]],
                log,
            )
            for side, folder in (("off", off_dir), ("on", on_dir))
        }
        scraper = Scraper(await metrics_url(servers["on"]), plan.scrape_seconds)
        print(f"servers up; off: {results.settings['off']}, on: {results.settings['on']}")
        for callers in plan.callers:
            for release in plan.releases:
                workload = login_workload(release, callers, seats)
                samples: dict[str, list[Sample]] = {"off": [], "on": []}
                for number in range(plan.rounds):
                    order = ("on", "off") if number % 2 == 0 else ("off", "on")
                    for side in order:
                        if side == "on":
                            scraper.start()
                        try:
                            sample = await measure_once(
                                children, servers[side], workload, callers, measuring
                            )
                        finally:
                            if side == "on":
                                await scraper.stop()
                        samples[side].append(sample)
                        print(
                            f"  round {number + 1}/{plan.rounds}: {workload.label:<10} "
                            f"{callers:>3} callers, metrics {side:<3}: "
                            f"{sample.calls / sample.seconds:7.0f} calls/s",
                            flush=True,
                        )
                row_id = f"{workload.key}/{callers}"
                sides = {
                    side: summarise(row_id, workload, servers[side], callers, samples[side])
                    for side in ("off", "on")
                }
                row = _row(row_id, workload, callers, sides)
                row.round_cpu_ratios = [
                    (a.server_cpu_seconds / a.calls) / (b.server_cpu_seconds / b.calls)
                    for a, b in zip(samples["on"], samples["off"], strict=True)
                    if a.calls and b.calls and b.server_cpu_seconds
                ]
                results.rows.append(row)
        results.scrapes = len(scraper.seconds)
        if scraper.seconds:
            ms = sorted(1e3 * s for s in scraper.seconds)
            results.scrape_ms = {
                "median": statistics.median(ms),
                "max": ms[-1],
            }
        for server in servers.values():
            await children.stop_server(server)
            if server.process.returncode != 0:
                raise BenchError(
                    f"{server.name} exited with {server.process.returncode}; see {work}/servers.log"
                )


def _spread(ratios: list[float]) -> str:
    return f"{min(ratios):.3f}-{max(ratios):.3f}" if ratios else "-"


def print_overhead(results: OverheadResults, plan: OverheadPlan) -> None:
    """The table: each side, and on against off with the rounds' spread."""
    head = (
        f"{'workload':<10} {'callers':>7} {'off c/s':>8} {'on c/s':>8} {'x thr':>6} "
        f"{'rounds x thr':>13} {'off p99':>8} {'on p99':>8} {'off us':>7} {'on us':>7} "
        f"{'x CPU':>6} {'rounds x CPU':>13}"
    )
    print(head)
    print("-" * len(head))
    for r in results.rows:
        print(
            f"{r.workload:<10} {r.callers:>7} {r.off.throughput:>8.0f} {r.on.throughput:>8.0f} "
            f"{r.throughput_ratio:>6.3f} {_spread(r.round_throughput_ratios):>13} "
            f"{r.off.p99_ms:>8.2f} {r.on.p99_ms:>8.2f} {r.off.server_cpu_us_per_call:>7.0f} "
            f"{r.on.server_cpu_us_per_call:>7.0f} {r.cpu_per_call_ratio:>6.3f} "
            f"{_spread(r.round_cpu_ratios):>13}"
        )
    print(
        "x thr: throughput with metrics and history on against off (over all rounds); "
        "rounds x thr: the lowest and highest of the rounds' ratios; p99 in ms; us: server "
        "CPU per call; x CPU: on against off."
    )
    if results.scrape_ms:
        print(
            f"scrapes of the 'on' server: {results.scrapes}, every {plan.scrape_seconds:g} s "
            f"while measured; a scrape took {results.scrape_ms['median']:.1f} ms (median), "
            f"{results.scrape_ms['max']:.1f} ms at most, at {plan.users:,} users"
        )
    if results.rows:
        thr = statistics.fmean(r.throughput_ratio for r in results.rows)
        cpu = statistics.fmean(r.cpu_per_call_ratio for r in results.rows)
        note = " (smoke sizes: not meaningful)" if plan.smoke else ""
        verdict = "met" if thr >= 1 - LIMIT and cpu <= 1 + LIMIT else "NOT MET"
        print(
            f"\nmetrics and history on cost {100 * (1 - thr):+.1f}% throughput and "
            f"{100 * (cpu - 1):+.1f}% server CPU per login (mean of the rows); target at most "
            f"{100 * LIMIT:.0f}%: {verdict}{note}"
        )
