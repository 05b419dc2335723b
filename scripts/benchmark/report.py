"""The printed report: the table of rows, the scale figures, the targets, the reference."""

from __future__ import annotations

from typing import Any

from scripts.benchmark.measure import Row
from scripts.benchmark.plan import Plan
from scripts.benchmark.targets import Target


def _ratio(value: float) -> str:
    return f"{value:.2f}" if value else "-"


def print_table(rows: list[Row]) -> None:
    """The measurements, with their ratios to the empty call and, for the real server's
    logins and heartbeats, to the minimal reference's."""
    head = (
        f"{'workload':<22} {'server':<17} {'callers':>7} {'calls/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'x thr':>6} {'x p99':>6} {'srv CPU':>8} {'us/call':>8} "
        f"{'x CPU':>6} {'cli CPU':>8} {'m thr':>6} {'m p99':>6} {'m CPU':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.workload:<22} {r.server:<17} {r.callers:>7} {r.throughput:>9.0f} "
            f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.throughput_ratio:>6.2f} {r.p99_ratio:>6.2f} "
            f"{r.server_cpu_percent:>7.0f}% {r.server_cpu_us_per_call:>8.0f} "
            f"{r.cpu_per_call_ratio:>6.2f} {r.client_cpu_percent:>7.0f}% "
            f"{_ratio(r.minimal_throughput_ratio):>6} {_ratio(r.minimal_p99_ratio):>6} "
            f"{_ratio(r.minimal_cpu_per_call_ratio):>6}"
        )
    print(
        "x thr, x p99, x CPU: against the empty call with as many callers; m thr, m p99, "
        "m CPU: against the minimal reference's same workload with as many callers. srv CPU: "
        "the server process's CPU (all threads; 100% = one core) in the measured window; "
        "us/call: server CPU time per call; cli CPU: the load generator's."
    )


def print_ratios(rows: list[Row]) -> None:
    """Each real server's login and heartbeat against the empty call and the minimal
    reference, one line each."""
    print("\nthe real server against the empty call and the minimal reference")
    for r in rows:
        if not r.minimal_throughput_ratio:
            continue
        print(
            f"  {r.workload}, {r.server}, {r.callers} callers: throughput "
            f"{r.throughput_ratio:.2f}x the empty call, {r.minimal_throughput_ratio:.2f}x "
            f"the minimal; p99 {r.p99_ratio:.2f}x, {r.minimal_p99_ratio:.2f}x; CPU per call "
            f"{r.cpu_per_call_ratio:.2f}x, {r.minimal_cpu_per_call_ratio:.2f}x"
        )


def print_scale(scale: dict[str, Any], plan: Plan) -> None:
    """Start-up, memory, enabling users and the status call at size."""
    startup = scale["startup_seconds"]
    admin = scale["admin"]
    single, bulk = admin["single_enable"], admin["bulk_enable"]
    sizes = f"{plan.users:,} users, {plan.licenses:,} licenses of {plan.seats_per_license} seats"
    print(f"\nscale ({sizes})")
    runs = ", ".join(f"{s:.2f}" for s in startup["large"])
    print(
        f"  start-up, process start to 'listening on': {startup['large_median']:.2f} s "
        f"(runs: {runs} s); {plan.small_users:,} users: {startup['small']:.2f} s; bare "
        f"grpc.aio server: {startup['bare']:.2f} s; minimal reference: "
        f"{startup['minimal']:.2f} s. Includes starting Python and the imports."
    )
    print(
        f"  server memory (VmRSS): {scale['rss_mb']['at_startup']:.0f} MB after start-up, "
        f"{scale['rss_mb']['after_load']:.0f} MB after the load and the enables "
        f"({admin['status_after_enable']['active_sessions']:,} live sessions); "
        f"{plan.small_users:,} users: {scale['rss_mb']['small_at_startup']:.0f} MB"
    )
    print(f"  enable {bulk['users']:,} users in one call: {bulk['seconds']:.2f} s")
    done = "all" if single["complete"] else f"{single['users']:,} of {single['of']:,} (time limit)"
    print(
        f"  enable users one call at a time: {done} in {single['seconds']:.1f} s, "
        f"{single['calls_per_second']:.1f} calls/s, p50 {single['p50_ms']:.1f} ms, p99 "
        f"{single['p99_ms']:.1f} ms; {single['of']:,} would take "
        f"{single['projected_seconds']:.0f} s (durable commits: WAL, synchronous=FULL)"
    )
    for when in ("before", "after"):
        status = admin[f"status_{when}_enable"]
        print(
            f"  admin status call, {when} the enables ({status['users_enabled']:,} enabled): "
            f"p50 {status['p50_ms']:.1f} ms, max {status['max_ms']:.1f} ms over "
            f"{status['calls']} calls"
        )


def print_targets(found: list[Target], plan: Plan) -> None:
    """Each target, met or not, with the numbers."""
    note = " (smoke sizes and durations: not meaningful)" if plan.smoke else ""
    print(f"\ntargets{note}")
    for t in found:
        mark = "met    " if t.met else "NOT MET"
        print(f"  {mark}  {t.name}: {t.value:.2f} (target {t.limit}): {t.detail}")


def print_reference(rows: dict[str, Row], plan: Plan) -> None:
    """The 6.x login against two calls that do part of its work: the empty call with
    protobuf messages (protobuf's own cost, which the targets' baseline does not pay),
    and a constant login-sized reply from the bare server (the transport's cost of a
    login's bytes, with no logic). What is left against the second is the real server's
    own work per call: protobuf parsing and writing, its gRPC handling and the login."""
    print("\nfor reference, not a target: 6.x login throughput against")
    sizes = (("small", f"{plan.small_users:,} users"), ("large", f"{plan.users:,} users"))
    for callers in plan.callers:
        for key, label in (
            ("empty-protobuf", "the empty call with protobuf"),
            ("login-constant", "a constant login reply from the bare server"),
        ):
            other = rows[f"{key}/bare/{callers}"]
            ratios = ", ".join(
                f"{size} {rows[f'login-6.x/{server}/{callers}'].throughput / other.throughput:.2f}"
                for server, size in sizes
            )
            print(
                f"  {label}, {callers} callers: {ratios} (that call itself: "
                f"{other.throughput_ratio:.2f}x the bare empty call)"
            )
