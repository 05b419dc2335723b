"""The admin calls at size: the status call, enabling users in one call and one at a time."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from officestatus_client import AdminClient
from scripts.bench_load import percentile
from scripts.benchmark import BenchError
from scripts.benchmark.children import Server
from scripts.benchmark.database import user_name
from scripts.benchmark.plan import Plan


def _ms_summary(seconds: list[float]) -> dict[str, float]:
    ns = sorted(int(s * 1e9) for s in seconds)
    return {
        "p50_ms": percentile(ns, 0.5) / 1e6,
        "p99_ms": percentile(ns, 0.99) / 1e6,
        "max_ms": ns[-1] / 1e6 if ns else 0.0,
        "mean_ms": statistics.fmean(seconds) * 1e3 if seconds else 0.0,
    }


async def timed_status(admin: AdminClient, calls: int) -> dict[str, Any]:
    """The admin status call, `calls` times one after another."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        status = await admin.status()
        times.append(time.perf_counter() - started)
    return {
        "calls": calls,
        **_ms_summary(times),
        "users_enabled": status.users_enabled,
        "seats_total": status.seats_total,
        "active_sessions": status.active_sessions,
    }


async def admin_scale(server: Server, data_dir: Path, plan: Plan) -> dict[str, Any]:
    """Status, then enabling `plan.enable` users in one call and (others) one at a time."""
    token = (data_dir / "admin-token").read_text().strip()
    first = plan.enabled_at_start + 1
    bulk_names = [user_name(i) for i in range(first, first + plan.enable)]
    single_names = [user_name(i) for i in range(first + plan.enable, first + 2 * plan.enable)]
    async with AdminClient(server.address, token, timeout=300) as admin:
        status_before = await timed_status(admin, plan.status_calls)

        started = time.perf_counter()
        users, _ = await admin.enable_users(bulk_names)
        bulk_seconds = time.perf_counter() - started
        if len(users) != plan.enable or not all(u.enabled for u in users):
            raise BenchError("the bulk enable did not enable every user it named")

        times: list[float] = []
        deadline = time.perf_counter() + plan.single_enable_seconds
        for name in single_names:
            if time.perf_counter() >= deadline:
                break
            started = time.perf_counter()
            users, _ = await admin.enable_users([name])
            times.append(time.perf_counter() - started)
            if not users[0].enabled:
                raise BenchError(f"enabling {name} did not enable it")
        status_after = await timed_status(admin, plan.status_calls)
    elapsed = sum(times)
    return {
        "bulk_enable": {"users": plan.enable, "seconds": bulk_seconds},
        "single_enable": {
            "users": len(times),
            "of": plan.enable,
            "seconds": elapsed,
            "calls_per_second": len(times) / elapsed if elapsed else 0.0,
            **_ms_summary(times),
            "projected_seconds": elapsed / len(times) * plan.enable if times else 0.0,
            "complete": len(times) == plan.enable,
        },
        "status_before_enable": status_before,
        "status_after_enable": status_after,
    }
