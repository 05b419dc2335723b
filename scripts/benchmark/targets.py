"""The issue's targets, each evaluated on one run: met or not, with the numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scripts.benchmark.measure import MINIMAL, Row
from scripts.benchmark.plan import Plan


@dataclass(frozen=True)
class Target:
    """One target of the issue, met or not, with the numbers."""

    name: str
    limit: str
    value: float
    met: bool
    detail: str


# The speed targets for the real server at `users` (the large database), each
# against the minimal reference's or the empty call's row with as many callers.
WITHIN_MINIMAL = 0.03
EMPTY_THROUGHPUT = 0.90
EMPTY_P99 = 1.15
# The 100,000-users login against the 100 users' login.
AT_SIZE = 0.95
# Every workload with a target; --quick evaluates the 6.x login's only.
TARGET_WORKLOADS = ("login-6.x", "login-3.x", "heartbeat-5.x")


def speed_targets(rows: dict[str, Row], plan: Plan, workloads: tuple[str, ...]) -> list[Target]:
    """Each workload on the real server at `users`, with each caller count: throughput and
    CPU per call within 3% of the minimal reference's, throughput against the empty
    call's, p99 against the empty call's."""
    found: list[Target] = []
    for callers in plan.callers:
        base = rows[f"empty/bare/{callers}"]
        for key in workloads:
            row = rows[f"{key}/large/{callers}"]
            minimal = rows[f"{key}/{MINIMAL}/{callers}"]
            what = f"{row.workload} at {plan.users:,} users, {callers} callers"
            found += [
                Target(
                    f"{what}: throughput against the minimal reference",
                    f">= {1 - WITHIN_MINIMAL:.2f}x",
                    row.minimal_throughput_ratio,
                    row.minimal_throughput_ratio >= 1 - WITHIN_MINIMAL,
                    f"{row.throughput:.0f} vs {minimal.throughput:.0f} calls/s",
                ),
                Target(
                    f"{what}: server CPU per call against the minimal reference",
                    f"<= {1 + WITHIN_MINIMAL:.2f}x",
                    row.minimal_cpu_per_call_ratio,
                    0 < row.minimal_cpu_per_call_ratio <= 1 + WITHIN_MINIMAL,
                    f"{row.server_cpu_us_per_call:.0f} vs {minimal.server_cpu_us_per_call:.0f} "
                    "us per call",
                ),
                Target(
                    f"{what}: throughput against the empty call",
                    f">= {EMPTY_THROUGHPUT:.2f}x",
                    row.throughput_ratio,
                    row.throughput_ratio >= EMPTY_THROUGHPUT,
                    f"{row.throughput:.0f} vs {base.throughput:.0f} calls/s",
                ),
                Target(
                    f"{what}: p99 against the empty call",
                    f"<= {EMPTY_P99:.2f}x",
                    row.p99_ratio,
                    row.p99_ratio <= EMPTY_P99,
                    f"{row.p99_ms:.2f} vs {base.p99_ms:.2f} ms",
                ),
            ]
    return found


def targets(rows: dict[str, Row], scale: dict[str, Any], plan: Plan) -> list[Target]:
    """Every target, evaluated on this run (--quick: the 6.x login's speed targets)."""
    if plan.quick:
        return speed_targets(rows, plan, ("login-6.x",))
    found = speed_targets(rows, plan, TARGET_WORKLOADS)
    for callers in plan.callers:
        large, small = rows[f"login-6.x/large/{callers}"], rows[f"login-6.x/small/{callers}"]
        ratio = large.throughput / small.throughput
        found.append(
            Target(
                f"6.x login throughput at {plan.users:,} users and {plan.licenses:,} "
                f"licenses, {callers} callers",
                f">= {AT_SIZE:.2f}x at {plan.small_users:,} users",
                ratio,
                ratio >= AT_SIZE,
                f"{large.throughput:.0f} vs {small.throughput:.0f} calls/s",
            )
        )
    startup = scale["startup_seconds"]["large_median"]
    found.append(
        Target(
            f"start-up at {plan.users:,} users (process start to 'listening on')",
            "<= 1.0 s",
            startup,
            startup <= 1.0,
            f"{startup:.2f} s (median of {len(scale['startup_seconds']['large'])}); "
            f"the bare grpc.aio server takes {scale['startup_seconds']['bare']:.2f} s",
        )
    )
    rss = scale["rss_mb"]["at_startup"]
    found.append(
        Target(
            f"server memory at {plan.users:,} users (VmRSS after start-up)",
            "<= 200 MB",
            rss,
            rss <= 200,
            f"{rss:.0f} MB ({scale['rss_mb']['after_load']:.0f} MB after the load)",
        )
    )
    bulk = scale["admin"]["bulk_enable"]["seconds"]
    found.append(
        Target(
            f"enabling {plan.enable:,} users in one call at {plan.users:,} users",
            "<= 2.0 s",
            bulk,
            bulk <= 2.0,
            f"{bulk:.2f} s",
        )
    )
    return found
