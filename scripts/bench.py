#!/usr/bin/env python3
"""Benchmark: the license server's client calls against a bare grpc.aio server.

One run, on this machine, with every server in a process of its own:

- a bare grpc.aio server answering an empty unary call: the baseline;
- the real `officestatus-server` on a prepared database of 100 users, and one of 100,000
  users and 1,000 installed licenses (written through the storage API before it starts).

One load generator (scripts/bench_load.py, a process of its own) drives each in turn
with N concurrent callers, prepared request bytes, a warm-up and a measured window; the
rows take turns in interleaved rounds, so a noisy machine's slow moments fall on all. The
report gives throughput and p50/p99 latency of the empty call, a 3.x login, a 6.x login,
a 5.x heartbeat and GetLicenseStatus, each as a ratio to the baseline; the server's CPU
per call; the start-up time, memory, enabling 10,000 users one call at a time and in one
call, and the status call at 100,000 users; and each target, met or not. For reference
(not a target) it also measures two calls to the bare server, the empty call with
protobuf messages and 6.x login requests answered with a constant login-sized reply,
and the 6.x login against each.

    python scripts/bench.py                      # full run, a few minutes
    python scripts/bench.py --json bench.json    # the same, also as JSON
    python scripts/bench.py --smoke              # tiny sizes, seconds (for the tests)
    python scripts/bench.py --strict             # exit 1 when a target is missed

Run it from the checkout with the project's virtual environment (the server command is
found next to this Python). Traffic goes to 127.0.0.1 only; every process it starts is
stopped at the end. Exit codes: 0 done, 1 a target missed (only with --strict), 2 error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import grpc
from google.protobuf import __version__ as protobuf_version
from google.protobuf.internal import api_implementation

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from officestatus.licensing import seat_service_pb2 as seat_pb  # noqa: E402
from officestatus_client import AdminClient  # noqa: E402
from officestatus_server.config import ServerConfig  # noqa: E402
from officestatus_server.core import b64url  # noqa: E402
from officestatus_server.core.keys import (  # noqa: E402
    LicenseKey,
    LicenseKind,
    SigningKey,
    sign_key,
)
from officestatus_server.core.model import AuditEntry, Change, InstalledLicense, User  # noqa: E402
from officestatus_server.storage.sqlite import SqliteStore  # noqa: E402
from scripts.bench_load import (  # noqa: E402
    BASELINE_METHOD,
    CONSTANT_METHOD,
    MEASURED,
    MEASURING,
    PROTOBUF_METHOD,
    LoadResult,
    LoadSpec,
    percentile,
)

LOAD_SCRIPT = ROOT / "scripts" / "bench_load.py"
SERVER_COMMAND = str(Path(sys.executable).parent / "officestatus-server")
SEAT_SERVICE = "/officestatus.licensing.SeatService/"
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_CLOCK_TICK = os.sysconf("SC_CLK_TCK")
RESULT_LINE_LIMIT = 256 * 1024 * 1024


class BenchError(Exception):
    """Something went wrong: the run cannot be trusted."""


# --- what to run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Sizes, durations and caller counts of one run."""

    users: int = 100_000
    licenses: int = 1_000
    small_users: int = 100
    # Enabled one call at a time, and again (other users) in one call.
    enable: int = 10_000
    callers: tuple[int, ...] = (16, 64)
    # Measured seconds per row, split over `rounds` interleaved rounds (each with its own
    # warm-up): the machine's noise then falls on every row alike.
    duration_seconds: float = 10.0
    rounds: int = 3
    warmup_seconds: float = 1.0
    # Enabling one call at a time stops after this long; the rest is projected.
    single_enable_seconds: float = 30.0
    startup_runs: int = 3
    status_calls: int = 20
    channels: str = "per-caller"
    smoke: bool = False

    @property
    def seats_per_license(self) -> int:
        """Enough seats for every user."""
        return -(-self.users // self.licenses)

    @property
    def seats_total(self) -> int:
        """Seats of all the large database's licenses together."""
        return self.seats_per_license * self.licenses

    @property
    def small_enabled(self) -> int:
        """Enabled in the small database (it has one license for all its users)."""
        return self.small_users * 4 // 5

    @property
    def enabled_at_start(self) -> int:
        """Enabled in the prepared database: room is left to enable `enable` twice."""
        return self.users - 2 * self.enable

    def check(self) -> None:
        """Refuse sizes that cannot work."""
        if min(self.callers, default=0) < 1 or self.duration_seconds <= 0 or self.rounds < 1:
            raise BenchError("callers, the duration and the rounds must be positive")
        if min(self.enabled_at_start, self.small_enabled) < max(self.callers):
            raise BenchError(
                "too few users: every caller logs in as an enabled user of its own "
                f"(users {self.users}, enabled {self.enabled_at_start}, callers "
                f"{max(self.callers)})"
            )


FULL = Plan()
SMOKE = Plan(
    users=200,
    licenses=10,
    small_users=100,
    enable=50,
    callers=(4, 16),
    duration_seconds=1.0,
    rounds=1,
    warmup_seconds=0.3,
    single_enable_seconds=10.0,
    startup_runs=1,
    status_calls=3,
    smoke=True,
)


# --- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What this run ran on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": protobuf_version,
        "protobuf_backend": api_implementation.Type(),
        "load_average_before": round(os.getloadavg()[0], 2),
        "code": code_version(),
    }


def code_version() -> str:
    """The commit the server code is at, and whether server/ or client/ differ from it
    (others may be editing while this runs)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "server", "client"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} + uncommitted changes in server/ or client/" if changed else head


def machine_line(info: dict[str, Any]) -> str:
    """The machine in one line."""
    return (
        f"machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"{info['os']}, Python {info['python']}, grpcio {info['grpcio']}, protobuf "
        f"{info['protobuf']} ({info['protobuf_backend']} backend), load average "
        f"{info['load_average_before']} before the run; code at {info['code']}"
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (all its threads)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


def rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for process {pid}")


# --- the prepared databases ----------------------------------------------------------------


def user_name(i: int) -> str:
    """The i-th bench user, from 1."""
    return f"user{i:06d}"


def _new_database(data_dir: Path) -> Path:
    """Make an owner-only data directory; the path of its database."""
    data_dir.mkdir(mode=0o700, parents=True)
    return ServerConfig(data_dir=data_dir).database_path


async def prepare_database(
    data_dir: Path, signing: SigningKey, users: int, licenses: int, seats: int, enabled: int
) -> None:
    """Write licenses and users through the storage API, before the server starts.

    The first `enabled` users are enabled in order; the evaluation is over, so the seat
    rules apply to every login."""
    now = datetime.now(UTC)
    installed = []
    for i in range(1, licenses + 1):
        key = LicenseKey(
            signing_key_id=signing.key_id,
            license_id=f"BENCH-{i:05d}",
            major_version=6,
            seats=seats,
            kind=LicenseKind.PURCHASED,
            customer="Bench Ltd",
            purchase_date=now.date(),
            issue_date=now.date(),
        )
        installed.append(
            InstalledLicense(key.license_id, sign_key(key, signing.private_key), now, key)
        )
    people = tuple(
        User(user_name(i), True, now, now, i) if i <= enabled else User(user_name(i), False, now)
        for i in range(1, users + 1)
    )
    store = SqliteStore(_new_database(data_dir))
    await store.open(now)
    try:
        await store.commit(
            Change(
                audit=AuditEntry(
                    now, "bench.prepare", f"{users} users", f"{licenses} licenses of {seats} seats"
                ),
                add_licenses=tuple(installed),
                put_users=people,
                evaluation_ended_at=now,
            )
        )
    finally:
        await store.close()


# --- processes -----------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: SIGTERM when the bench process dies, however it dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Server:
    """A server process that said where it listens."""

    name: str
    process: asyncio.subprocess.Process
    address: str
    startup_seconds: float
    output: list[str] = field(default_factory=list)
    drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


class Children:
    """Every process this run starts; `stop_all` ends whatever is still running."""

    def __init__(self) -> None:
        self._processes: list[asyncio.subprocess.Process] = []
        # Every process started, running or not: the report names them.
        self.started: list[int] = []

    async def spawn(self, *command: str, **kwargs: Any) -> asyncio.subprocess.Process:
        """Start a process and remember it."""
        preexec = _die_with_parent if sys.platform == "linux" else None
        process = await asyncio.create_subprocess_exec(*command, preexec_fn=preexec, **kwargs)
        self._processes.append(process)
        self.started.append(process.pid)
        return process

    async def start_server(
        self, name: str, command: list[str], log: IO[bytes], timeout: float = 60
    ) -> Server:
        """Start a server and wait for its "listening on" line (the time until then is its
        start-up time); its log goes to `log`."""
        started = time.perf_counter()
        process = await self.spawn(*command, stdout=asyncio.subprocess.PIPE, stderr=log)
        assert process.stdout is not None
        lines: list[str] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await process.stdout.readline()
                    if not raw:
                        await process.wait()
                        raise BenchError(
                            f"{name} exited ({process.returncode}) before listening: "
                            + "".join(lines)
                        )
                    lines.append(raw.decode())
                    if match := _LISTENING.search(lines[-1]):
                        break
        except TimeoutError:
            raise BenchError(f"{name} did not say where it listens within {timeout:g} s") from None
        elapsed = time.perf_counter() - started
        server = Server(name, process, f"127.0.0.1:{match.group(2)}", elapsed, lines)
        server.drain = asyncio.create_task(self._drain(process, lines))
        return server

    @staticmethod
    async def _drain(process: asyncio.subprocess.Process, lines: list[str]) -> None:
        assert process.stdout is not None
        while raw := await process.stdout.readline():
            lines.append(raw.decode())

    async def stop(self, process: asyncio.subprocess.Process, timeout: float = 20) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process in self._processes:
            self._processes.remove(process)

    async def stop_server(self, server: Server) -> None:
        """Stop a server; its remaining output is kept in `server.output`."""
        await self.stop(server.process)
        if server.drain is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.drain, 5)

    async def stop_all(self) -> None:
        """Stop every process still running."""
        await asyncio.gather(*(self.stop(p) for p in list(self._processes)), return_exceptions=True)


# --- workloads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One kind of call: its method and prepared request bytes, one per caller at most,
    and a check of what the server answers to them."""

    key: str
    label: str
    method: str
    payloads: tuple[bytes, ...]
    # A problem with one reply, or None when it is what the workload expects.
    check: Callable[[bytes], str | None]


def empty_workload(*, protobuf: bool = False) -> Workload:
    """The baseline: empty bytes to the bare server. With `protobuf`, the reference: the
    same call with google.protobuf.Empty parsed and written."""
    key, label, method = (
        ("empty-protobuf", "empty call, protobuf", PROTOBUF_METHOD)
        if protobuf
        else ("empty", "empty call", BASELINE_METHOD)
    )
    return Workload(
        key,
        label,
        method,
        (b"",),
        lambda reply: None if reply == b"" else "the bare server answered something",
    )


def login_requests(release: int, callers: int) -> tuple[bytes, ...]:
    """Login requests of `callers` different users, as a 3.x or 6.x client sends them."""
    version = {3: "3.4.2", 6: "6.0.0"}[release]
    return tuple(
        seat_pb.LoginRequest(
            user_name=user_name(i + 1),
            client_version=version,
            machine_name="" if release < 4 else f"BENCH-PC-{i + 1:03d}",
        ).SerializeToString()
        for i in range(callers)
    )


def constant_login_reply(seats: int) -> bytes:
    """A 6.x login reply as the server grants one (a session id of the same form), for
    the bare server's constant reference method."""
    payload = f"6|{'0' * 16}|{'0' * 16}|{user_name(1).upper()}".encode()
    return seat_pb.LoginReply(
        granted=True,
        message=f"Welcome, {user_name(1)}.",
        session_id=f"s2.{b64url.encode(payload)}.{b64url.encode(bytes(18))}",
        heartbeat_interval_seconds=60,
        license=seat_pb.LicenseInfo(seats_total=seats, seats_used=seats, major_version=6),
    ).SerializeToString()


def constant_login_workload(callers: int, reply: bytes) -> Workload:
    """6.x login requests to the bare server, answered with `reply` as it is: the
    transport's cost of a login, with no protobuf and no logic (a reference row)."""
    return Workload(
        "login-constant",
        "6.x login, constant",
        CONSTANT_METHOD,
        login_requests(6, callers),
        lambda raw: None if raw == reply else "the bare server answered something else",
    )


def login_workload(release: int, callers: int, seats: int) -> Workload:
    """Logins of `callers` different enabled users holding seats, as a 3.x or 6.x client."""
    payloads = login_requests(release, callers)

    def check(raw: bytes) -> str | None:
        reply = seat_pb.LoginReply.FromString(raw)
        if not reply.granted:
            return f"login refused: {reply.message}"
        if release >= 6 and (reply.license.seats_total != seats or not reply.session_id):
            return "a 6.x login reply without the license state or a session"
        if release < 4 and (reply.HasField("license") or reply.session_id or reply.reason):
            return "a 3.x login reply with fields 3.x does not know"
        return None

    return Workload(
        f"login-{release}.x", f"{release}.x login", SEAT_SERVICE + "Login", payloads, check
    )


def heartbeat_workload(session_ids: list[str]) -> Workload:
    """Heartbeats of live 5.x sessions, one per caller."""
    payloads = tuple(
        seat_pb.HeartbeatRequest(session_id=s).SerializeToString() for s in session_ids
    )

    def check(raw: bytes) -> str | None:
        reply = seat_pb.HeartbeatReply.FromString(raw)
        return None if reply.granted else f"heartbeat refused: {reply.message}"

    return Workload("heartbeat-5.x", "5.x heartbeat", SEAT_SERVICE + "Heartbeat", payloads, check)


def status_workload(seats: int) -> Workload:
    """GetLicenseStatus as a 6.x client asks it."""
    payload = seat_pb.LicenseStatusRequest(client_version="6.0.0").SerializeToString()

    def check(raw: bytes) -> str | None:
        reply = seat_pb.LicenseStatusReply.FromString(raw)
        if reply.seats_total != seats or reply.major_version != 6:
            return f"license status with {reply.seats_total} seats, not {seats}"
        return None

    return Workload(
        "license-status-6.x",
        "GetLicenseStatus 6.x",
        SEAT_SERVICE + "GetLicenseStatus",
        (payload,),
        check,
    )


async def call_raw(address: str, method: str, payloads: tuple[bytes, ...]) -> list[bytes]:
    """Each payload once, as bytes, on a channel of its own."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        return [await stub(p, timeout=30) for p in payloads]


async def open_sessions(address: str, callers: int) -> list[str]:
    """Live 5.x sessions of `callers` different users, for heartbeats."""
    logins = tuple(
        seat_pb.LoginRequest(
            user_name=user_name(i + 1), client_version="5.2.0", machine_name="BENCH-PC"
        ).SerializeToString()
        for i in range(callers)
    )
    replies = [
        seat_pb.LoginReply.FromString(r)
        for r in await call_raw(address, SEAT_SERVICE + "Login", logins)
    ]
    if not all(r.granted and r.session_id for r in replies):
        raise BenchError("a 5.x login for a heartbeat session was refused")
    return [r.session_id for r in replies]


# --- measuring -----------------------------------------------------------------------------


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


def add_ratios(rows: list[Row]) -> None:
    """Each row against the empty call with as many callers."""
    baselines = {r.callers: r for r in rows if r.id.startswith("empty/")}
    for row in rows:
        base = baselines.get(row.callers)
        if base is None:
            continue
        row.throughput_ratio = row.throughput / base.throughput
        row.p99_ratio = row.p99_ms / base.p99_ms if base.p99_ms else 0.0
        if base.server_cpu_us_per_call:
            row.cpu_per_call_ratio = row.server_cpu_us_per_call / base.server_cpu_us_per_call


# --- scale ---------------------------------------------------------------------------------


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


# --- targets and the report ----------------------------------------------------------------


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


def print_table(rows: list[Row]) -> None:
    """The measurements, with their ratios to the empty call."""
    head = (
        f"{'workload':<22} {'server':<16} {'callers':>7} {'calls/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'x thr':>6} {'x p99':>6} {'srv CPU':>8} {'us/call':>8} "
        f"{'x CPU':>6} {'cli CPU':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.workload:<22} {r.server:<16} {r.callers:>7} {r.throughput:>9.0f} "
            f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.throughput_ratio:>6.2f} {r.p99_ratio:>6.2f} "
            f"{r.server_cpu_percent:>7.0f}% {r.server_cpu_us_per_call:>8.0f} "
            f"{r.cpu_per_call_ratio:>6.2f} {r.client_cpu_percent:>7.0f}%"
        )
    print(
        "x thr, x p99, x CPU: against the empty call with as many callers. srv CPU: the "
        "server process's CPU (all threads; 100% = one core) in the measured window; "
        "us/call: server CPU time per call; cli CPU: the load generator's."
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
        f"grpc.aio server: {startup['bare']:.2f} s. Includes starting Python and the imports."
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


# --- the run -------------------------------------------------------------------------------


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
        return json.dumps(dataclasses.asdict(self), indent=2)


def _server_command(data_dir: Path, vendor_key: Path) -> list[str]:
    return [
        SERVER_COMMAND,
        "--data-dir",
        str(data_dir),
        "--listen",
        "127.0.0.1:0",
        "--vendor-key",
        str(vendor_key),
    ]


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
            f"{plan.small_users:,} users", _server_command(small_dir, vendor_key), log
        )
        small_rss = rss_mb(small.pid)
        large_runs: list[float] = []
        for attempt in range(plan.startup_runs):
            large = await children.start_server(
                f"{plan.users:,} users", _server_command(large_dir, vendor_key), log
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 s measurements")
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
    plan = SMOKE if args.smoke else FULL
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


async def _main(args: argparse.Namespace) -> int:
    plan = _plan(args)
    info = machine()
    print(machine_line(info), flush=True)
    results = Results(info, dataclasses.asdict(plan))
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="officestatus-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    children = Children()
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    code = 0
    try:
        await run(plan, work, results, children)
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
            args.json.write_text(results.to_json() + "\n")
        if args.keep or code:
            print(f"kept: {work}", flush=True)
        elif args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(machine_line(info))
    print()
    print_table(results.rows)
    if code:
        return code
    print_scale(results.scale, plan)
    print_targets(results.targets, plan)
    missed = [t for t in results.targets if not t.met]
    print(f"\n{len(results.targets) - len(missed)} of {len(results.targets)} targets met")
    print_reference({r.id: r for r in results.rows}, plan)
    return 1 if missed and args.strict else 0


def main() -> int:
    args = _parser().parse_args()
    if sys.platform != "linux":
        print("error: the benchmark reads /proc and runs on Linux only", file=sys.stderr)
        return 2
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
