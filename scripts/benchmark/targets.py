"""The issue's targets, each evaluated on one run: met or not, with the numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scripts.benchmark.measure import Row
from scripts.benchmark.plan import Plan


@dataclass(frozen=True)
class Target:
    """One target of the issue, met or not, with the numbers."""

    name: str
    limit: str
    value: float
    met: bool
    detail: str


def targets(rows: dict[str, Row], scale: dict[str, Any], plan: Plan) -> list[Target]:
    """Every target, evaluated on this run."""
    found: list[Target] = []
    sizes = (("small", f"{plan.small_users:,} users"), ("large", f"{plan.users:,} users"))
    for callers in plan.callers:
        base = rows[f"empty/bare/{callers}"]
        for key, label in sizes:
            row = rows[f"login-6.x/{key}/{callers}"]
            found.append(
                Target(
                    f"6.x login throughput, {callers} callers, {label}",
                    ">= 0.90x the empty call",
                    row.throughput_ratio,
                    row.throughput_ratio >= 0.9,
                    f"{row.throughput:.0f} vs {base.throughput:.0f} calls/s",
                )
            )
            found.append(
                Target(
                    f"6.x login p99, {callers} callers, {label}",
                    "<= 1.20x the empty call",
                    row.p99_ratio,
                    row.p99_ratio <= 1.2,
                    f"{row.p99_ms:.2f} vs {base.p99_ms:.2f} ms",
                )
            )
    for callers in plan.callers:
        large, small = rows[f"login-6.x/large/{callers}"], rows[f"login-6.x/small/{callers}"]
        ratio = large.throughput / small.throughput
        found.append(
            Target(
                f"6.x login throughput at {plan.users:,} users and {plan.licenses:,} "
                f"licenses, {callers} callers",
                f">= 0.95x at {plan.small_users:,} users",
                ratio,
                ratio >= 0.95,
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
