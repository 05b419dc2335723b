"""`scripts/bench.py --overhead --instructions`: what metrics and the usage history cost a
login, in instructions (callgrind), which the machine's load does not move.

Each side's real server runs under callgrind (scripts/benchmark/instructions.py) on a
fresh copy of one prepared database, with the same options as --overhead's sides:

- "off": no HTTP listener, the usage history off, the log at warning;
- "on": the HTTP listener with /metrics, scraped once every `scrape_every` counted logins,
  the usage history flushed every `flush_seconds` of wall time (under callgrind a login
  takes tens of times longer, so there are more flushes per login than in real use).

For each row (6.x logins, 3.x logins) the server gets `warmup` logins, its counts are
zeroed, then `calls` logins one at a time (cycling through `login_users` enabled users),
then its counts are dumped: instructions per login. The sides run in turns (off, on, off,
on), each on a server started for it, so each side's runs show how well the count repeats.
"""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from scripts.benchmark.children import Children, Server, real_server_command
from scripts.benchmark.instructions import Count, Counter, Hook, prepare_counted_run
from scripts.benchmark.overhead import LIMIT, OverheadPlan, Scraper, metrics_url, side_options
from scripts.benchmark.overhead import server_options as help_text
from scripts.benchmark.workloads import login_workload

# What a scrape every 500 logins stands for: a Prometheus scraping every 15 s while
# the server answers some 33 logins a second.
PROMETHEUS_SECONDS = 15


@dataclass(frozen=True)
class InstructionPlan:
    """Sizes, counts and the sides' turns."""

    users: int = 100_000
    licenses: int = 1_000
    releases: tuple[int, ...] = (6, 3)
    calls: int = 2_000
    warmup: int = 200
    scrape_every: int = 500
    flush_seconds: int = 5
    # Different enabled users the logins cycle through.
    login_users: int = 100
    sides: tuple[str, ...] = ("off", "on", "off", "on")
    smoke: bool = False

    @property
    def seats_per_license(self) -> int:
        """Enough seats for every user."""
        return -(-self.users // self.licenses)

    @property
    def logins_per_second_modelled(self) -> float:
        """The login rate at which one scrape per `scrape_every` logins is a Prometheus'
        scrape every 15 s."""
        return self.scrape_every / PROMETHEUS_SECONDS


FULL = InstructionPlan()
SMOKE = InstructionPlan(
    users=200,
    licenses=10,
    releases=(6,),
    calls=60,
    warmup=20,
    scrape_every=20,
    flush_seconds=1,
    login_users=10,
    sides=("off", "on", "off"),
    smoke=True,
)


@dataclass
class InstructionRow:
    """One workload: instructions per login off and on, and on against off."""

    id: str
    workload: str
    calls: int
    off: float
    on: float
    ratio: float
    # Instructions per login of each run of each side: how well the count repeats.
    off_runs: list[float] = field(default_factory=list)
    on_runs: list[float] = field(default_factory=list)
    # Scrapes of /metrics within each counted "on" window, and each window's seconds.
    on_scrapes: list[int] = field(default_factory=list)
    seconds: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class InstructionResults:
    """What --overhead --instructions found, as its JSON file has it."""

    machine: dict[str, Any]
    plan: dict[str, Any]
    settings: dict[str, list[str]] = field(default_factory=dict)
    models: str = ""
    rows: list[InstructionRow] = field(default_factory=list)
    limit: float = LIMIT
    met: bool | None = None
    verdict: str = ""
    error: str | None = None
    pids: list[int] = field(default_factory=list)


def _settings(plan: InstructionPlan) -> dict[str, list[str]]:
    like = OverheadPlan(flush_seconds=plan.flush_seconds)
    return side_options(like, help_text())


def spread(runs: list[float]) -> float:
    """(highest - lowest) / mean of a side's runs; 0 for one run."""
    return (max(runs) - min(runs)) / statistics.fmean(runs) if len(runs) > 1 else 0.0


async def run_instructions(
    plan: InstructionPlan, work: Path, results: InstructionResults, children: Children
) -> None:
    """The whole run; fills `results` as it goes."""
    vendor_key, prepared = await prepare_counted_run(
        work, plan.users, plan.licenses, plan.seats_per_license
    )
    results.settings = _settings(plan)
    results.models = (
        f"one /metrics scrape per {plan.scrape_every} logins: a Prometheus scraping every "
        f"{PROMETHEUS_SECONDS} s at ~{plan.logins_per_second_modelled:.0f} logins/s; the "
        f"usage history flushed every {plan.flush_seconds} s of wall time under callgrind"
    )
    seats = plan.seats_per_license * plan.licenses
    counts: dict[tuple[int, str], list[Count]] = {
        (r, s): [] for r in plan.releases for s in ("off", "on")
    }
    with (work / "servers.log").open("ab") as log:
        for number, side in enumerate(plan.sides, 1):
            folder = work / f"run{number}-{side}"
            shutil.copytree(prepared, folder)
            command = [*real_server_command(folder, vendor_key), *results.settings[side]]
            print(f"run {number}/{len(plan.sides)}: metrics {side}, starting under callgrind ...")
            counter = await Counter.start(
                children, f"metrics {side}", command, work / f"callgrind-{number}-{side}.out", log
            )
            print(f"  listening after {counter.server.startup_seconds:.0f} s", flush=True)
            try:
                for release, count in (await _count_side(counter, side, plan, seats)).items():
                    counts[(release, side)].append(count)
            finally:
                await counter.stop()
    for release in plan.releases:
        off, on = counts[(release, "off")], counts[(release, "on")]
        off_runs = [c.per_call for c in off]
        on_runs = [c.per_call for c in on]
        results.rows.append(
            InstructionRow(
                id=f"login-{release}.x",
                workload=f"{release}.x login",
                calls=plan.calls,
                off=statistics.fmean(off_runs),
                on=statistics.fmean(on_runs),
                ratio=statistics.fmean(on_runs) / statistics.fmean(off_runs),
                off_runs=off_runs,
                on_runs=on_runs,
                on_scrapes=[c.hooks for c in on],
                seconds={"off": [c.seconds for c in off], "on": [c.seconds for c in on]},
            )
        )
    worst = max(r.ratio for r in results.rows)
    results.met = worst <= 1 + LIMIT
    results.verdict = (
        f"metrics and history on cost at most {100 * (worst - 1):+.1f}% instructions per login "
        f"(the worst row); target at most {100 * LIMIT:.0f}%: "
        f"{'met' if results.met else 'NOT MET'}"
    )


async def _count_side(
    counter: Counter, side: str, plan: InstructionPlan, seats: int
) -> dict[int, Count]:
    """Each row's count on one side's server; the "on" server is scraped as it goes."""
    found: dict[int, Count] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        hook: Hook | None = None
        if side == "on":
            scraper = Scraper(await metrics_url(counter.server, 600), 0)

            async def hook(_server: Server) -> None:
                await scraper.once(session)

        for release in plan.releases:
            workload = login_workload(release, plan.login_users, seats)
            count = await counter.count(
                workload, calls=plan.calls, warmup=plan.warmup, hook=hook, every=plan.scrape_every
            )
            found[release] = count
            print(
                f"  {workload.label}: {count.per_call:,.0f} instructions per login "
                f"({count.calls} logins in {count.seconds:.0f} s, {count.hooks} scrapes)",
                flush=True,
            )
    return found


def print_instructions(results: InstructionResults, plan: InstructionPlan) -> None:
    """The table: instructions per login off and on, the ratio, each side's repeatability."""
    head = (
        f"{'workload':<10} {'logins':>7} {'off instr':>11} {'on instr':>11} {'x on/off':>8} "
        f"{'off runs':>9} {'on runs':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results.rows:
        print(
            f"{r.workload:<10} {r.calls:>7} {r.off:>11,.0f} {r.on:>11,.0f} {r.ratio:>8.3f} "
            f"{len(r.off_runs)}x{100 * spread(r.off_runs):>5.2f}% "
            f"{len(r.on_runs)}x{100 * spread(r.on_runs):>5.2f}%"
        )
    print(
        "instr: instructions per login executed by the whole server process (callgrind), the "
        "mean of the side's runs; x on/off: on against off; runs: how many runs, and their "
        "spread ((highest - lowest) / mean)."
    )
    if results.models:
        print(f"the 'on' side: {results.models}.")
    if results.verdict:
        note = " (smoke sizes: not meaningful)" if plan.smoke else ""
        print(f"\n{results.verdict}{note}")
