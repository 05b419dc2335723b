"""Processes the tests and the scripts start: the `officestatus-server` command on a free
port, and any other command that says where it listens.

One place reads a server's banner ("... listening on HOST:PORT", then, from the real
server, more lines through "licensing: ..."), stops a process (SIGTERM, then SIGKILL) and
ties a child's life to its parent's. tests/process.py, tests/crash.py, scripts/attack.py
and the benchmark (scripts/benchmark/) use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import re
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# The server command of this virtual environment: installed next to this Python.
SERVER_COMMAND = str(Path(sys.executable).parent / "officestatus-server")
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
# The real server's last banner line starts so; the lines between follow at once.
_BANNER_END = "licensing:"


def server_command(data_dir: Path, *extra: str) -> list[str]:
    """The server on `data_dir`, listening on a free port of 127.0.0.1."""
    return [SERVER_COMMAND, "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", *extra]


class NotListening(Exception):
    """A process's output ended before it said where it listens."""

    def __init__(self, output: str, returncode: int | None) -> None:
        super().__init__(f"exited ({returncode}) before listening")
        self.output = output
        self.returncode = returncode


@dataclass(frozen=True)
class Listening:
    """Where a process said it listens, and what it had printed until then."""

    host: str
    port: int
    # Each line as printed, with its newline.
    lines: tuple[str, ...]

    @property
    def address(self) -> str:
        """HOST:PORT, as a client dials it."""
        return f"{self.host}:{self.port}"

    @property
    def banner(self) -> str:
        """The lines together."""
        return "".join(self.lines)


async def wait_listening(
    process: asyncio.subprocess.Process, timeout: float, *, whole_banner: bool = False
) -> Listening:
    """Read the process's stdout until it says where it listens; with `whole_banner`,
    on through the server's "licensing:" line.

    Raises NotListening when the output ends first (the process has exited then), and
    TimeoutError after `timeout` seconds; on any failure the process is killed."""
    assert process.stdout is not None
    lines: list[str] = []
    match: re.Match[str] | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                raw = await process.stdout.readline()
                if not raw:
                    await process.wait()
                    raise NotListening("".join(lines), process.returncode)
                lines.append(raw.decode())
                match = match or _LISTENING.search(lines[-1])
                if match and (not whole_banner or lines[-1].startswith(_BANNER_END)):
                    break
    except BaseException:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()
        raise
    assert match is not None
    return Listening(match.group(1), int(match.group(2)), tuple(lines))


async def start_listening(
    *command: str,
    timeout: float,
    whole_banner: bool = False,
    stderr: int | IO[bytes] = asyncio.subprocess.STDOUT,
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> tuple[asyncio.subprocess.Process, Listening]:
    """Start `command` with its stdout piped (stderr with it, unless told otherwise) and
    wait until it says where it listens (see `wait_listening`)."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env, preexec_fn=preexec_fn
    )
    return process, await wait_listening(process, timeout, whole_banner=whole_banner)


async def terminate(process: asyncio.subprocess.Process, timeout: float = 20) -> bool:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`; whether it exited in
    time (or had already)."""
    if process.returncode is not None:
        return True
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return False
    return True


def die_with_parent() -> None:
    """Run in the child before it starts (`preexec_fn`): SIGTERM when its parent dies,
    however the parent dies (Linux; elsewhere nothing)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
