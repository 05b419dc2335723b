"""The processes of one run: the servers and the load generators, each started and
stopped through scripts/processes.py, every one remembered so that none outlives the run."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from scripts.benchmark import ROOT, BenchError
from scripts.processes import (
    NotListening,
    die_with_parent,
    server_command,
    terminate,
    wait_listening,
)

# The bare grpc.aio server and the load generator, both run from this one script.
LOAD_SCRIPT = ROOT / "scripts" / "bench_load.py"


def real_server_command(data_dir: Path, vendor_key: Path) -> list[str]:
    """`officestatus-server` on a prepared database, on a free port of 127.0.0.1."""
    return server_command(data_dir, "--vendor-key", str(vendor_key))


def minimal_command(users: int, seats: int) -> list[str]:
    """The minimal reference server (scripts/bench_load.py serve-minimal) with `users`
    enabled users, telling 6.x logins `seats`."""
    return [
        sys.executable,
        str(LOAD_SCRIPT),
        "serve-minimal",
        "--users",
        str(users),
        "--seats",
        str(seats),
    ]


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
        """The server's process id."""
        return self.process.pid


class Children:
    """Every process this run starts; `stop_all` ends whatever is still running."""

    def __init__(self) -> None:
        self._processes: list[asyncio.subprocess.Process] = []
        # Every process started, running or not: the report names them.
        self.started: list[int] = []

    async def spawn(self, *command: str, **kwargs: Any) -> asyncio.subprocess.Process:
        """Start a process and remember it; it gets SIGTERM if this process dies."""
        preexec = die_with_parent if sys.platform == "linux" else None
        process = await asyncio.create_subprocess_exec(*command, preexec_fn=preexec, **kwargs)
        self._processes.append(process)
        self.started.append(process.pid)
        return process

    async def start_server(
        self,
        name: str,
        command: list[str],
        log: IO[bytes],
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> Server:
        """Start a server and wait for its "listening on" line (the time until then is its
        start-up time); its log goes to `log`."""
        started = time.perf_counter()
        process = await self.spawn(*command, stdout=asyncio.subprocess.PIPE, stderr=log, env=env)
        try:
            listening = await wait_listening(process, timeout)
        except NotListening as exc:
            raise BenchError(
                f"{name} exited ({exc.returncode}) before listening: {exc.output}"
            ) from None
        except TimeoutError:
            raise BenchError(f"{name} did not say where it listens within {timeout:g} s") from None
        elapsed = time.perf_counter() - started
        lines = list(listening.lines)
        server = Server(name, process, f"127.0.0.1:{listening.port}", elapsed, lines)
        server.drain = asyncio.create_task(self._drain(process, lines))
        return server

    @staticmethod
    async def _drain(process: asyncio.subprocess.Process, lines: list[str]) -> None:
        assert process.stdout is not None
        while raw := await process.stdout.readline():
            lines.append(raw.decode())

    async def stop(self, process: asyncio.subprocess.Process, timeout: float = 20) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        await terminate(process, timeout)
        if process in self._processes:
            self._processes.remove(process)

    async def stop_server(self, server: Server, timeout: float = 20) -> None:
        """Stop a server; its remaining output is kept in `server.output`."""
        await self.stop(server.process, timeout)
        if server.drain is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.drain, 5)

    async def stop_all(self) -> None:
        """Stop every process still running."""
        await asyncio.gather(*(self.stop(p) for p in list(self._processes)), return_exceptions=True)
