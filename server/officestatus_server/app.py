"""Running the server: data directory, admin token, trust store, gRPC, signals."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from officestatus_server.config import ServerConfig
from officestatus_server.core.keys import TrustStore
from officestatus_server.errors import InvalidInput, PreconditionFailed
from officestatus_server.rpc.server import GrpcServer
from officestatus_server.service import Clock, LicenseService, utc_now
from officestatus_server.storage.sqlite import SqliteStore

log = logging.getLogger("officestatus.server")


def ensure_admin_token(path: Path) -> str:
    """Read the admin token, creating it owner-only on the first start."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        log.warning("the admin token %s is readable by others (mode %o): chmod 600 it", path, mode)
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise PreconditionFailed(
            f"The admin token file {path} is empty or too short. Delete it and restart the "
            "server to create a new one.",
            reason="ADMIN_TOKEN_FILE_INVALID",
        )
    return token


def load_trust(config: ServerConfig) -> TrustStore:
    """The vendor public keys: the configured files and <data_dir>/vendor-keys/*.pub."""
    files = list(config.vendor_key_files)
    if config.vendor_keys_dir.is_dir():
        files += sorted(config.vendor_keys_dir.glob("*.pub"))
    texts = []
    for path in files:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(
                f"Cannot read the vendor key file {path}: {exc.strerror}.",
                reason="VENDOR_KEY_FILE_UNREADABLE",
            ) from exc
    return TrustStore.from_public_key_texts(texts)


class ServerApp:
    """One running license server."""

    def __init__(self, config: ServerConfig, clock: Clock = utc_now) -> None:
        self.config = config
        self.token = ensure_admin_token(config.token_path)
        self.service = LicenseService(
            SqliteStore(config.database_path),
            load_trust(config),
            clock=clock,
            heartbeat_interval=timedelta(seconds=config.heartbeat_interval_seconds),
        )
        self._grpc: GrpcServer | None = None
        self.port = 0

    @property
    def grpc(self) -> GrpcServer:
        """The gRPC server (made in `start`: grpc.aio binds it to the running loop)."""
        if self._grpc is None:
            raise RuntimeError("the server has not started")
        return self._grpc

    async def start(self) -> int:
        """Load the state and start serving; returns the port."""
        await self.service.start()
        try:
            self._grpc = GrpcServer(self.service, self.token)
            self.port = self._grpc.listen(self.config.listen)
            await self._grpc.start()
        except BaseException:
            await self.service.close()
            raise
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, finish in-flight calls, close the database."""
        await self.grpc.stop(self.config.shutdown_grace_seconds if grace is None else grace)
        await self.service.close()

    async def run_until_signal(self, on_ready: Callable[[ServerApp], None]) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully."""
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await self.start()
        on_ready(self)
        await stopping.wait()
        log.info("stopping: finishing calls in progress")
        await self.stop()
