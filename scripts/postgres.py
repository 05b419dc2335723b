"""A real PostgreSQL server of its own, for the tests and the scripts: Debian's binaries
in a temporary directory, on a free loopback port, run as the unprivileged `postgres`
user when this process runs as root (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

BIN_ROOT = Path("/usr/lib/postgresql")
# Fast and throwaway: a crash of the test machine loses a test database, nothing else.
_SETTINGS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def binaries() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    found = sorted(
        (p for p in BIN_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise RuntimeError(
            f"no PostgreSQL server binaries in {BIN_ROOT}/*/bin: install Debian's postgresql "
            "package (apt-get install postgresql; ./scripts/check does it as root)"
        )
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """One PostgreSQL server in `directory` (made, and removed by `close`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = _free_port()
        self.bin = binaries()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        """initdb (trust on loopback only: it listens nowhere else)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    async def start(self) -> None:
        """Start it (again), waiting until it accepts connections."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 {_SETTINGS}"
        log = str(self.directory / "postgres.log")
        await asyncio.to_thread(
            self._run,
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            log,
            "-w",
            "start",
        )

    async def stop(self) -> None:
        """Stop it (fast: connections are cut), waiting until it is down."""
        await asyncio.to_thread(
            self._run, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
        )

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self) -> str:
        """A new empty database; its URL."""
        import asyncpg

        name = "os_" + uuid.uuid4().hex[:16]
        conn = await asyncpg.connect(self.url("postgres"), timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    async def close(self) -> None:
        """Stop it and remove its files."""
        with contextlib.suppress(RuntimeError):  # stopped already
            await self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
