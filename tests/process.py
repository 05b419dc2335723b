"""Starting the real `officestatus-server` command as a separate process."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from scripts.processes import SERVER_COMMAND, NotListening, server_command, start_listening

__all__ = ["SERVER_COMMAND", "ServerProcess", "start_server_process"]


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
    """Start the server on a free port and wait until it has printed its whole banner."""
    try:
        process, listening = await start_listening(
            *server_command(data_dir, *extra),
            timeout=timeout,
            whole_banner=True,
            env={**os.environ, **(env or {})},
        )
    except NotListening as exc:
        raise RuntimeError("server exited before listening:\n" + exc.output) from None
    return ServerProcess(process, listening.address, listening.banner)
