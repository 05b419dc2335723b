"""Instructions per call: a server process run under valgrind's callgrind, counting the
instructions it executes for a fixed number of calls.

Instruction counts do not move with the machine's load, as throughput and CPU seconds do
on a shared machine: the same server, database and calls give (nearly) the same count
every run. What is counted is the whole server process, every thread of it (gRPC's
threads, SQLite's, the event loop), from a zeroing after the warm-up to the dump after the
last call.

    count = await count_instructions(children, "on", command, workload, calls=2000, ...)
    count.per_call

`count_instructions` takes any server command that prints "listening on HOST:PORT" (the
real server, or the bare grpc.aio server of scripts/bench_load.py) and any workload of
scripts/benchmark/workloads.py; the calls go one at a time from this process, so the work
is the same every run.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc

from officestatus_server.core.keys import SigningKey
from scripts.benchmark import BenchError
from scripts.benchmark.children import Children, Server
from scripts.benchmark.database import prepare_database
from scripts.benchmark.workloads import Workload

# Instrumentation starts off: the start-up runs at valgrind's fastest, uncounted.
CALLGRIND = ("--tool=callgrind", "--instr-atstart=no")
# The same hash seed every run: Python's dicts and sets then do the same work.
ENVIRONMENT = {"PYTHONHASHSEED": "0"}
_TOTAL = re.compile(r"^(summary|totals):\s+(\d+)", re.MULTILINE)
# A server under valgrind starts some ten times slower, and a large database takes long.
START_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Count:
    """The instructions a server executed for `calls` calls (after a warm-up)."""

    name: str
    calls: int
    instructions: int
    # Wall seconds of the counted calls (under valgrind: tens of times the real time).
    seconds: float
    # How often the hook ran in the counted window (e.g. scrapes of /metrics).
    hooks: int = 0

    @property
    def per_call(self) -> float:
        """Instructions per call."""
        return self.instructions / self.calls


def have_callgrind() -> str | None:
    """Why callgrind cannot be used here, or None when it can."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install valgrind)"
    return None


async def prepare_counted_run(
    work: Path, users: int, licenses: int, seats: int
) -> tuple[Path, Path]:
    """Before a run under callgrind: check callgrind is there, write a vendor key and a
    database of `users` users, all enabled, and `licenses` licenses of `seats` seats signed
    with it. The vendor key's public file and the prepared data directory (copy it for
    each server: a server changes its database)."""
    missing = have_callgrind()
    if missing:
        raise BenchError(missing)
    signing = SigningKey.generate("kms-bench")
    vendor_key = work / "kms-bench.pub"
    vendor_key.write_text(signing.public_text())
    print(f"preparing the database ({users:,} users) in {work} ...", flush=True)
    prepared = work / "prepared"
    await prepare_database(prepared, signing, users, licenses, seats, users)
    return vendor_key, prepared


def under_callgrind(command: list[str], out_file: Path) -> list[str]:
    """`command` run under callgrind, its dumps written to `out_file`.N.

    A console script (`officestatus-server`) is run by this Python explicitly: valgrind
    then counts that Python itself, not a launcher that execs it."""
    program = command[0]
    if program != sys.executable and _is_python_script(program):
        command = [sys.executable, *command]
    valgrind = shutil.which("valgrind") or "valgrind"
    return [valgrind, *CALLGRIND, f"--callgrind-out-file={out_file}", *command]


def _is_python_script(program: str) -> bool:
    try:
        with open(program, "rb") as file:
            first = file.readline(256)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


async def callgrind_control(option: str, pid: int) -> str:
    """Tell the callgrind run of `pid` to do something ("-i on", "-z", "-d")."""
    process = await asyncio.create_subprocess_exec(
        "callgrind_control",
        *option.split(),
        str(pid),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    text = output.decode(errors="replace")
    if process.returncode != 0 or "OK." not in text:
        raise BenchError(f"callgrind_control {option} {pid} failed: {text.strip()}")
    return text


def dump_total(path: Path) -> int:
    """The total instruction count of one callgrind dump ("summary:", else "totals:")."""
    text = path.read_text(errors="replace")
    found = dict((m.group(1), int(m.group(2))) for m in _TOTAL.finditer(text))
    if not found:
        raise BenchError(f"{path} has no summary or totals line")
    return found.get("summary", found.get("totals", 0))


async def dump(pid: int, out_file: Path) -> int:
    """Dump the counts since the last zeroing; the dump's total instruction count."""
    before = set(out_file.parent.glob(out_file.name + ".*"))
    await callgrind_control("-d", pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = sorted(set(out_file.parent.glob(out_file.name + ".*")) - before)
        if new and _TOTAL.search(new[-1].read_text(errors="replace")):
            return dump_total(new[-1])
        await asyncio.sleep(0.1)
    raise BenchError(f"callgrind wrote no dump next to {out_file}")


Hook = Callable[[Server], Awaitable[None]]


class Counter:
    """One server process under callgrind: start it, then count workloads against it."""

    def __init__(self, children: Children, name: str, server: Server, out_file: Path) -> None:
        self.children = children
        self.name = name
        self.server = server
        self.out_file = out_file

    @classmethod
    async def start(
        cls,
        children: Children,
        name: str,
        command: list[str],
        out_file: Path,
        log: IO[bytes],
        *,
        timeout: float = START_TIMEOUT,
    ) -> Counter:
        """Start `command` under callgrind and wait until it listens; counting is off."""
        env = {**os.environ, **ENVIRONMENT}
        server = await children.start_server(
            name, under_callgrind(command, out_file), log, timeout=timeout, env=env
        )
        await callgrind_control("-i on", server.pid)
        return cls(children, name, server, out_file)

    async def count(
        self,
        workload: Workload,
        *,
        calls: int,
        warmup: int,
        hook: Hook | None = None,
        every: int = 0,
    ) -> Count:
        """`warmup` calls, zero the counts, `calls` calls one at a time (and `hook` after
        every `every` of them), then dump: the instructions of the counted calls."""
        async with grpc.aio.insecure_channel(self.server.address) as channel:
            stub: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                workload.method
            )
            await _calls(stub, workload, warmup)
            await callgrind_control("-z", self.server.pid)
            started = time.perf_counter()
            hooks = 0
            done = 0
            while done < calls:
                step = min(every, calls - done) if hook is not None and every > 0 else calls
                await _calls(stub, workload, step, offset=done)
                done += step
                if hook is not None and every > 0 and done % every == 0:
                    await hook(self.server)
                    hooks += 1
            seconds = time.perf_counter() - started
        instructions = await dump(self.server.pid, self.out_file)
        return Count(self.name, calls, instructions, seconds, hooks)

    async def stop(self) -> None:
        """Stop the server (SIGTERM; valgrind writes its last dump as it exits)."""
        await self.children.stop_server(self.server, timeout=600)
        if self.server.process.returncode not in (0, -15):
            raise BenchError(f"{self.name} exited with {self.server.process.returncode}")


async def _calls(
    stub: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
    workload: Workload,
    number: int,
    *,
    offset: int = 0,
) -> None:
    payloads = workload.payloads
    for i in range(offset, offset + number):
        reply = await stub(payloads[i % len(payloads)], timeout=300)
        problem = workload.check(reply)
        if problem is not None:
            raise BenchError(f"{workload.label}: {problem}")


async def count_instructions(
    children: Children,
    name: str,
    command: list[str],
    workload: Workload,
    out_file: Path,
    log: IO[bytes],
    *,
    calls: int,
    warmup: int,
    hook: Hook | None = None,
    every: int = 0,
) -> Count:
    """Instructions per call of one workload on a server started for it: the server
    command under callgrind, `warmup` calls, then `calls` counted calls one at a time."""
    counter = await Counter.start(children, name, command, out_file, log)
    try:
        return await counter.count(workload, calls=calls, warmup=warmup, hook=hook, every=every)
    finally:
        await counter.stop()
