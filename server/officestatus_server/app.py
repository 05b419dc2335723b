"""Running the server: data directory, admin token, trust store, gRPC, signals."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import signal
import stat
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from google.protobuf.internal import api_implementation

from officestatus_server.config import ServerConfig
from officestatus_server.core.keys import TrustStore
from officestatus_server.core.takeover import Takeover
from officestatus_server.core.timings import CallTimes
from officestatus_server.datadir import InstanceLock, refuse_orphans, traces, unusable_files
from officestatus_server.errors import InvalidInput, LicenseServerError, PreconditionFailed
from officestatus_server.rpc.server import GrpcServer, Limits, server_credentials
from officestatus_server.service import Clock, LicenseService, Monotonic, utc_now
from officestatus_server.storage.base import Store
from officestatus_server.storage.sqlite import SqliteStore
from officestatus_server.takeover.find import find_old_installation
from officestatus_server.takeover.find import plan as plan_takeover_of

if TYPE_CHECKING:
    from officestatus_server.http.listener import HttpListener

# Allocations between the collector's young collections (Python's default is 700).
GC_YOUNG_OBJECTS = 10_000
log = logging.getLogger("officestatus.server")


def protobuf_backend() -> str:
    """Which protobuf implementation runs: "upb" (fast, C) or "python" (slow)."""
    return str(api_implementation.Type())


# The installation value that holds the admin token when servers share a database.
ADMIN_TOKEN_KEY = "admin_token"


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


def write_admin_token(path: Path, token: str) -> None:
    """Replace the local admin token file (owner-only) with the installation's token."""
    partial = path.with_name(path.name + ".new")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    os.replace(partial, path)


def open_store(config: ServerConfig) -> Store:
    """The configured database: a SQLite file, or PostgreSQL (shared by servers)."""
    if config.shared_database and config.database is not None:
        from officestatus_server.storage.postgres import PostgresStore

        return PostgresStore(config.database)
    return SqliteStore(config.database_path)


def load_trust(config: ServerConfig) -> TrustStore:
    """The vendor public keys: the configured files and <data_dir>/vendor-keys/*.pub, each
    with where it came from. A vendor-keys/ that every user may write to is refused: anyone
    could make the server trust a key of their own."""
    files = list(config.vendor_key_files)
    folder = config.vendor_keys_dir
    if folder.is_dir():
        mode = stat.S_IMODE(folder.stat().st_mode)
        if os.name == "posix" and mode & 0o002:
            raise PreconditionFailed(
                f"{folder} can be written by every user of this machine (mode {mode:o}): "
                "anyone could make the server trust a key of their own. Run chmod o-w on it.",
                reason="VENDOR_KEYS_DIR_UNSAFE",
            )
        files += sorted(folder.glob("*.pub"))
    home = config.data_dir.resolve()
    read = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(
                f"Cannot read the vendor key file {path}: {exc.strerror}.",
                reason="VENDOR_KEY_FILE_UNREADABLE",
            ) from exc
        resolved = path.resolve()
        inside = resolved.is_relative_to(home)
        read.append((str(path), resolved.relative_to(home).as_posix() if inside else None, text))
    return TrustStore.from_key_files(read)


def ensure_vendor_keys_dir(path: Path) -> None:
    """Create the folder of trusted vendor keys at the first start (public keys: others
    may read them, only the owner may add one)."""
    path.mkdir(mode=0o755, exist_ok=True)


# Open files kept for the database, logs and the process itself, beside the connections.
_FILES_RESERVED = 64


def raise_open_file_limit() -> int | None:
    """Raise the open-file soft limit to the hard limit (each connection is one open file;
    many systems start servers at 1,024); the limit now in force, None where there is
    none to read (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d: %s", soft, exc)
    return soft


def _with_unusable_files(exc: LicenseServerError, data_dir: Path) -> LicenseServerError:
    """The error, naming the files this user cannot use when there are any."""
    files = unusable_files(data_dir)
    if not files:
        return exc
    return type(exc)(
        f"{exc.message} This user cannot read and write: {', '.join(files)}; a server run "
        "as another user may have left them. Give them back to this user (chown, chmod 600).",
        reason=exc.reason,
    )


# The signals that stop the server cleanly: SIGTERM (systemd, kill), SIGINT (Ctrl-C) and,
# on Windows, SIGBREAK (Ctrl-Break, what service wrappers such as NSSM and WinSW send).
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGBREAK") if hasattr(signal, name)
)
# SIGHUP (Unix): a closed terminal or an init system's reload.
HANGUP_SIGNALS = (signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()


def _hangup() -> None:
    # The server has nothing to reload (its settings apply at start): it keeps serving.
    log.info("SIGHUP: nothing to reload, still serving (SIGTERM stops)")


def on_signals(
    loop: asyncio.AbstractEventLoop, stop: Callable[[], None], hangup: Callable[[], None]
) -> Callable[[], None]:
    """Call `stop` in `loop` on any of STOP_SIGNALS, `hangup` on SIGHUP; returns what
    undoes it.

    The event loop's own signal handling where it has one (Unix); else (Windows' event
    loops raise NotImplementedError) Python's `signal.signal`, whose handler runs in the
    main thread and wakes the loop thread-safely.
    """
    handlers = {sig: stop for sig in STOP_SIGNALS} | {sig: hangup for sig in HANGUP_SIGNALS}
    try:
        for sig, callback in handlers.items():
            loop.add_signal_handler(sig, callback)
    except NotImplementedError:
        return _python_signal_handlers(loop, handlers)

    def undo() -> None:
        for sig in handlers:
            loop.remove_signal_handler(sig)

    return undo


def _python_signal_handlers(
    loop: asyncio.AbstractEventLoop, handlers: dict[int, Callable[[], None]]
) -> Callable[[], None]:
    def handler(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(handlers[signum])

    previous = {sig: signal.signal(sig, handler) for sig in handlers}

    def undo() -> None:
        for sig, before in previous.items():
            signal.signal(sig, before)

    return undo


class ServerApp:
    """One running license server."""

    def __init__(
        self, config: ServerConfig, clock: Clock = utc_now, monotonic: Monotonic = time.monotonic
    ) -> None:
        # Every setting is checked, and the trusted keys read, before anything is written.
        config.check()
        self.config = config
        self.service = LicenseService(
            open_store(config),
            load_trust(config),
            clock=clock,
            # A key dropped into vendor-keys/ is read when an install needs it.
            reload_trust=lambda: load_trust(config),
            heartbeat_interval=timedelta(seconds=config.heartbeat_interval_seconds),
            monotonic=monotonic,
            max_sessions_per_user=config.max_sessions_per_user,
            max_sessions=config.max_sessions,
            max_last_logins=config.max_last_logins,
            heartbeat_configured=config.heartbeat_configured,
            usage_flush_seconds=config.usage_flush_seconds,
            seat_alert_percent=config.seat_alert_percent,
        )
        self._trust = self.service.trust
        self._clock = clock
        self._monotonic = monotonic
        # Where the client service listens: the configured address, or the old server's
        # when this installation took one over and none was configured.
        self.listen = config.listen
        self.token = ""
        self._lock = InstanceLock(config.data_dir)
        self._servers: list[GrpcServer] = []
        # The HTTP listener (/metrics) when configured, and the RPCs' durations it shows.
        self.http: HttpListener | None = None
        self.times: CallTimes | None = CallTimes() if config.http_listen is not None else None
        self.port = 0
        # The admin service's port when it listens apart (else the same as `port`).
        self.admin_port = 0

    def takeover(self) -> Takeover | None:
        """At a first start (no database yet), the takeover of the older installation
        found, planned and checked; None when there is none or the database exists."""
        config = self.config
        # A shared database that holds an installation already ignores the takeover
        # (its `open` does): only the first server on it takes the older one over.
        if not config.shared_database and config.database_path.exists():
            if config.upgrade_from is not None:
                log.warning(
                    "--upgrade-from %s ignored: this server has its own database already, "
                    "which a takeover never overwrites",
                    config.upgrade_from,
                )
            return None
        directory = find_old_installation(config)
        if directory is None:
            return None
        return plan_takeover_of(directory, self._trust, self._clock())

    async def start(self) -> int:
        """Load the state and start serving; returns the client service's port."""
        if protobuf_backend() != "upb":
            log.warning(
                "protobuf runs on its %r backend, not upb: logins will be slower. Install "
                "the protobuf wheel for this platform.",
                protobuf_backend(),
            )
        config = self.config
        # One server per data directory: refused before the database is opened.
        self._lock.acquire()
        try:
            if not config.shared_database:
                found = traces(config.data_dir, config.database_path, config.token_path)
                refuse_orphans(found)
            seed = self.takeover()
            try:
                await self.service.start(seed)
            except LicenseServerError as exc:
                raise _with_unusable_files(exc, config.data_dir) from exc
        except BaseException:
            self._lock.release()
            raise
        try:
            self.token = ensure_admin_token(config.token_path)
            if self.service.shared:
                # One admin token for every server of the installation: the first
                # server's; the others write it into their own token file.
                shared = await self.service.installation_value(ADMIN_TOKEN_KEY, self.token)
                if shared != self.token:
                    write_admin_token(config.token_path, shared)
                    self.token = shared
            ensure_vendor_keys_dir(config.vendor_keys_dir)
            credentials = None
            if config.tls_cert is not None and config.tls_key is not None:
                credentials = server_credentials(
                    config.tls_cert, config.tls_key, config.tls_client_ca
                )
            apart = config.admin_listen is not None
            files = raise_open_file_limit()
            connections = config.max_connections
            if files is not None and connections > files - _FILES_RESERVED:
                connections = max(1, (files - _FILES_RESERVED) // (2 if apart else 1))
                log.warning(
                    "at most %d connections per listener: the open-file limit is %d",
                    connections,
                    files,
                )
            limits = Limits(max_connections=connections, idle_seconds=config.idle_seconds)
            # grpc.aio servers are made here, inside the running loop they belong to.
            took_over = self.service.took_over
            if took_over is not None and not config.listen_configured:
                self.listen = took_over.listen
            times = self.times
            main = GrpcServer(self.service, self.token, admin=not apart, limits=limits, times=times)
            self._servers = [main]
            self.port = self.admin_port = main.listen(self.listen, credentials)
            if config.admin_listen is not None:
                admin = GrpcServer(self.service, self.token, seat=False, limits=limits, times=times)
                self._servers.append(admin)
                self.admin_port = admin.listen(config.admin_listen, credentials)
            for server in self._servers:
                await server.start()
            if config.http_listen is not None:
                await self._start_http(config.http_listen)
            host = self.listen.rsplit(":", 1)[0]
            self._lock.announce(f"{host}:{self.port}")
            # The loaded state lives as long as the server: keep it out of the garbage
            # collector's full passes, which would otherwise stall logins for tens of ms.
            # (No collection first: at 100,000 users that alone costs a large part of the
            # start-up time.)
            gc.freeze()
            # Every call makes many short-lived objects (gRPC's tasks and futures, the
            # messages) and a login with a session a few long-lived ones; with Python's
            # default of a young collection every 700, the live sessions are gone
            # through again and again. At 100,000 users (callgrind, 1,000 logins one at
            # a time), the collector costs a 6.x login some 19,000 of its 625,000
            # instructions; one young collection every 7,000 objects saved 9,000 of
            # them, every 50,000 saved 12,000. 10,000 is taken: near the first, whose
            # young objects (cyclic garbage among them) wait less long.
            gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])
        except BaseException:
            await self._stop_http()
            for server in self._servers:
                await server.server.stop(None)
                await server.traffic.close()
            self._servers = []
            await self.service.close()
            self._lock.release()
            raise
        return self.port

    async def _start_http(self, address: str) -> None:
        """The HTTP listener with /metrics and the status page, in this event loop."""
        # Imported only when configured: a server without it starts without aiohttp.
        from officestatus_server.http.listener import HttpListener, tls_context
        from officestatus_server.http.metrics import MetricsPage, registry_for
        from officestatus_server.http.pages import status_site
        from officestatus_server.http.web import Site

        config = self.config
        tls = None
        if config.tls_cert is not None and config.tls_key is not None:
            tls = tls_context(config.tls_cert, config.tls_key, config.tls_client_ca)
        http = HttpListener(tls)
        http.add_routes(MetricsPage(registry_for(self.service, self.times)).routes())
        # The status page, signed in with the admin token.
        site = Site(self.service, self.token, secure=tls is not None, monotonic=self._monotonic)
        status_site(site)
        http.add_routes(site.routes())
        http.app.on_response_prepare.append(site.on_prepare)
        self.http = http
        await http.start(address)

    async def _stop_http(self) -> None:
        if self.http is not None:
            await self.http.stop()
            self.http = None

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, finish in-flight calls, close the database."""
        grace = self.config.shutdown_grace_seconds if grace is None else grace
        await self._stop_http()
        await asyncio.gather(*(server.stop(grace) for server in self._servers))
        self._servers = []
        await self.service.close()
        self._lock.release()

    async def run_until_signal(self, on_ready: Callable[[ServerApp], None]) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully."""
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        undo = on_signals(loop, stopping.set, _hangup)
        try:
            await self.start()
            on_ready(self)
            await stopping.wait()
            log.info("stopping: finishing calls in progress")
            await self.stop()
        finally:
            undo()
