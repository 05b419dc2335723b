"""Starting the real `officestatus-server` command as a separate process."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SERVER_COMMAND = str(Path(sys.executable).parent / "officestatus-server")
_LISTENING = re.compile(r"listening on (\S+):(\d+)")


@dataclass
class ServerProcess:
    """A server process and the address it listens on."""

    process: asyncio.subprocess.Process
    address: str
    banner: str

    async def stop(self, timeout: float = 20) -> tuple[int, str]:
        """SIGTERM, wait; the exit code and what it printed after the banner."""
        if self.process.returncode is None:
            self.process.terminate()
        out, _ = await asyncio.wait_for(self.process.communicate(), timeout)
        return self.process.returncode or 0, out.decode()

    async def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


async def start_server_process(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 30
) -> ServerProcess:
    """Start the server on a free port and wait until it says where it listens."""
    process = await asyncio.create_subprocess_exec(
        SERVER_COMMAND,
        "--data-dir",
        str(data_dir),
        "--listen",
        "127.0.0.1:0",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                raw = await process.stdout.readline()
                if not raw:
                    raise RuntimeError("server exited before listening:\n" + "".join(lines))
                line = raw.decode()
                lines.append(line)
                match = _LISTENING.search(line)
                if match:
                    break
            # The banner's remaining lines follow at once.
            while not lines[-1].startswith("licensing:"):
                lines.append((await process.stdout.readline()).decode())
    except BaseException:
        if process.returncode is None:
            process.kill()
        await process.wait()
        raise
    return ServerProcess(process, f"{match.group(1)}:{match.group(2)}", "".join(lines))
