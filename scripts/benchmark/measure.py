"""One measurement: the load generator run on one workload against one server, and the
rows summarised from the rounds."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass

from scripts.bench_load import MEASURED, MEASURING, LoadResult, LoadSpec, percentile
from scripts.benchmark import BenchError
from scripts.benchmark.children import LOAD_SCRIPT, Children, Server
from scripts.benchmark.machine import cpu_seconds
from scripts.benchmark.plan import Plan
from scripts.benchmark.workloads import Workload, call_raw

RESULT_LINE_LIMIT = 256 * 1024 * 1024
# The servers' keys in the row ids: the minimal reference, and the real servers (the
# small and the large database).
MINIMAL = "minimal"
REAL_SERVERS = ("small", "large")
# The workloads the minimal reference serves, each a row of its own.
MINIMAL_WORKLOADS = ("login-6.x", "login-3.x", "heartbeat-5.x")


@dataclass
class Row:
    """One measurement: a workload against one server with N callers."""

    id: str
    workload: str
    server: str
    callers: int
    throughput: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    calls: int
    server_cpu_percent: float
    server_cpu_us_per_call: float
    client_cpu_percent: float
    rounds: int
    # Each round's throughput: how much the machine's noise moved it.
    round_throughputs: list[float]
    # Against the empty call with as many callers; filled in once the baseline is known.
    throughput_ratio: float = 0.0
    p99_ratio: float = 0.0
    cpu_per_call_ratio: float = 0.0
    # A real server's login or heartbeat against the minimal reference's same workload
    # with as many callers (0 where there is none).
    minimal_throughput_ratio: float = 0.0
    minimal_p99_ratio: float = 0.0
    minimal_cpu_per_call_ratio: float = 0.0

    @property
    def workload_key(self) -> str:
        """The workload part of the id ("login-6.x")."""
        return self.id.split("/")[0]

    @property
    def server_key(self) -> str:
        """The server part of the id ("bare", "minimal", "small", "large")."""
        return self.id.split("/")[1]


@dataclass
class Sample:
    """One run of the load generator: one round of one row."""

    calls: int
    seconds: float
    latencies_us: list[int]
    server_cpu_seconds: float
    server_wall_seconds: float
    client_cpu_seconds: float


async def measure_once(
    children: Children, server: Server, workload: Workload, callers: int, plan: Plan
) -> Sample:
    """Check the server answers the workload right, then run the load generator on it."""
    for raw in await call_raw(server.address, workload.method, workload.payloads):
        problem = workload.check(raw)
        if problem is not None:
            raise BenchError(f"{workload.label} on {server.name}: {problem}")
    spec = LoadSpec(
        address=server.address,
        method=workload.method,
        payloads_hex=tuple(p.hex() for p in workload.payloads),
        callers=callers,
        warmup_seconds=plan.warmup_seconds,
        duration_seconds=plan.duration_seconds / plan.rounds,
        channels=plan.channels,
    )
    process = await children.spawn(
        sys.executable,
        str(LOAD_SCRIPT),
        "drive",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # The result is one line with every call's latency: megabytes in a long run.
        limit=RESULT_LINE_LIMIT,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    errors = asyncio.create_task(process.stderr.read())
    process.stdin.write(spec.to_json().encode())
    await process.stdin.drain()
    process.stdin.close()
    result: LoadResult | None = None
    cpu_start = cpu_end = wall_start = wall_end = 0.0
    timeout = spec.warmup_seconds + spec.duration_seconds + 60
    try:
        async with asyncio.timeout(timeout):
            while raw_line := await process.stdout.readline():
                line = raw_line.decode().strip()
                if line == MEASURING:
                    cpu_start, wall_start = cpu_seconds(server.pid), time.perf_counter()
                elif line == MEASURED:
                    cpu_end, wall_end = cpu_seconds(server.pid), time.perf_counter()
                elif line.startswith("{"):
                    result = LoadResult(**json.loads(line))
            await process.wait()
    except TimeoutError:
        raise BenchError(f"the load generator did not finish within {timeout:g} s") from None
    finally:
        await children.stop(process)
    stderr = (await errors).decode()
    if process.returncode != 0 or result is None or wall_end <= wall_start:
        raise BenchError(f"the load generator failed ({process.returncode}): {stderr[-2000:]}")
    if result.errors:
        raise BenchError(f"{workload.label} on {server.name}: calls failed: {result.errors}")
    if result.calls == 0:
        raise BenchError(f"{workload.label} on {server.name}: no call completed")
    return Sample(
        calls=result.calls,
        seconds=result.seconds,
        latencies_us=result.latencies_us,
        server_cpu_seconds=cpu_end - cpu_start,
        server_wall_seconds=wall_end - wall_start,
        client_cpu_seconds=result.client_cpu_seconds,
    )


def summarise(
    row_id: str, workload: Workload, server: Server, callers: int, samples: list[Sample]
) -> Row:
    """One row from its rounds: calls over the time measured, percentiles over every call."""
    calls = sum(s.calls for s in samples)
    seconds = sum(s.seconds for s in samples)
    latencies = sorted(us for s in samples for us in s.latencies_us)
    server_cpu = sum(s.server_cpu_seconds for s in samples) / sum(
        s.server_wall_seconds for s in samples
    )
    throughput = calls / seconds
    return Row(
        id=row_id,
        workload=workload.label,
        server=server.name,
        callers=callers,
        throughput=throughput,
        p50_ms=percentile(latencies, 0.50) / 1e3,
        p99_ms=percentile(latencies, 0.99) / 1e3,
        mean_ms=statistics.fmean(latencies) / 1e3,
        max_ms=latencies[-1] / 1e3,
        calls=calls,
        server_cpu_percent=100 * server_cpu,
        server_cpu_us_per_call=1e6 * server_cpu / throughput,
        client_cpu_percent=100 * sum(s.client_cpu_seconds for s in samples) / seconds,
        rounds=len(samples),
        round_throughputs=[s.calls / s.seconds for s in samples],
    )


def _ratios(row: Row, base: Row) -> tuple[float, float, float]:
    """Throughput, p99 and CPU per call of `row` against `base` (0 where `base`'s is 0)."""
    return (
        row.throughput / base.throughput if base.throughput else 0.0,
        row.p99_ms / base.p99_ms if base.p99_ms else 0.0,
        row.server_cpu_us_per_call / base.server_cpu_us_per_call
        if base.server_cpu_us_per_call
        else 0.0,
    )


def add_ratios(rows: list[Row]) -> None:
    """Each row against the empty call with as many callers; each real server's login and
    heartbeat also against the minimal reference's same workload."""
    baselines = {r.callers: r for r in rows if r.id.startswith("empty/")}
    by_id = {r.id: r for r in rows}
    for row in rows:
        base = baselines.get(row.callers)
        if base is not None:
            row.throughput_ratio, row.p99_ratio, row.cpu_per_call_ratio = _ratios(row, base)
        minimal = by_id.get(f"{row.workload_key}/{MINIMAL}/{row.callers}")
        if row.server_key in REAL_SERVERS and minimal is not None:
            (
                row.minimal_throughput_ratio,
                row.minimal_p99_ratio,
                row.minimal_cpu_per_call_ratio,
            ) = _ratios(row, minimal)
