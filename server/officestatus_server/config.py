"""The server's configuration: command-line options over environment over defaults."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from officestatus.paths import (
    DATA_DIR_ENV,
    DATABASE_FILE_NAME,
    DEFAULT_ADDRESS,
    TOKEN_FILE_NAME,
    default_data_dir,
)
from officestatus_server.core.sessions import DEFAULT_MAX_PER_USER, DEFAULT_MAX_TOTAL
from officestatus_server.errors import InvalidInput

LISTEN_ENV = "OFFICESTATUS_LISTEN"
VENDOR_KEYS_ENV = "OFFICESTATUS_VENDOR_KEYS"
HEARTBEAT_ENV = "OFFICESTATUS_HEARTBEAT_SECONDS"
ADMIN_LISTEN_ENV = "OFFICESTATUS_ADMIN_LISTEN"
TLS_CERT_ENV = "OFFICESTATUS_TLS_CERT"
TLS_KEY_ENV = "OFFICESTATUS_TLS_KEY"
TLS_CLIENT_CA_ENV = "OFFICESTATUS_TLS_CLIENT_CA"
MAX_SESSIONS_PER_USER_ENV = "OFFICESTATUS_MAX_SESSIONS_PER_USER"
MAX_SESSIONS_ENV = "OFFICESTATUS_MAX_SESSIONS"
VENDOR_KEYS_DIR_NAME = "vendor-keys"
# The heartbeat interval 5.x and later clients are told, in seconds: a session ends after
# three missed heartbeats, so the bounds keep a session between 15 seconds and 3 hours.
HEARTBEAT_SECONDS_MIN = 5
HEARTBEAT_SECONDS_MAX = 3600
UPGRADE_FROM_ENV = "OFFICESTATUS_UPGRADE_FROM"
LEGACY_DATA_DIR_ENV = "OFFICESTATUS_LEGACY_DATA_DIR"
MAX_CONNECTIONS_ENV = "OFFICESTATUS_MAX_CONNECTIONS"
HTTP_LISTEN_ENV = "OFFICESTATUS_HTTP_LISTEN"
IDLE_SECONDS_ENV = "OFFICESTATUS_IDLE_SECONDS"
# Setting: (lowest, highest) accepted.
RANGES = {
    "heartbeat": (HEARTBEAT_SECONDS_MIN, HEARTBEAT_SECONDS_MAX),
    "max_connections": (1, 1_000_000),
    "idle_seconds": (1, 86_400),
}


def legacy_default_dir() -> Path:
    """Where the 3.x-5.x servers kept their data by default."""
    if sys.platform == "win32":
        base = Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData"))
        return base / "OfficeStatus" / "Server"
    return Path("/var/lib/officestatus")


def check_address(value: str, setting: str) -> str:
    """`host:port` with a port from 0 to 65535 (`[::1]:50051` for IPv6), else refused."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(
            f"{setting} {value!r} is not host:port with a port from 0 to 65535 (0: a free "
            "port), e.g. localhost:50051 or 0.0.0.0:50051.",
            reason="ADDRESS_INVALID",
        )
    if host.startswith("[") != host.endswith("]") or (":" in host and not host.startswith("[")):
        raise InvalidInput(
            f"{setting} {value!r}: write an IPv6 address in brackets, e.g. [::1]:50051.",
            reason="ADDRESS_INVALID",
        )
    return value


def check_number(value: object, setting: str, kind: str) -> int:
    """A whole number within the documented range of `kind`, from a flag or the
    environment; `setting` names where it came from."""
    low, high = RANGES[kind]
    text = str(value).strip()
    number = int(text) if text.lstrip("-").isdigit() and len(text) < 12 else None
    if number is None or not low <= number <= high:
        raise InvalidInput(
            f"{setting} {text!r} is not a whole number from {low} to {high}.",
            reason=f"{kind.upper()}_INVALID",
        )
    return number


def check_heartbeat_seconds(value: object, setting: str) -> int:
    """A heartbeat interval in seconds within the documented range."""
    return check_number(value, setting, "heartbeat")


@dataclass(frozen=True)
class ServerConfig:
    """Where the server keeps its data, where it listens, whom it trusts."""

    data_dir: Path = field(default_factory=default_data_dir)
    listen: str = DEFAULT_ADDRESS
    # Vendor public key files, in addition to those in <data_dir>/vendor-keys/.
    vendor_key_files: tuple[Path, ...] = ()
    heartbeat_interval_seconds: int = 60
    shutdown_grace_seconds: float = 10.0
    # Where the admin service listens when it must not be reachable from the network
    # (e.g. "localhost:50052"); None: beside the client service on `listen`.
    admin_listen: str | None = None
    # TLS for every listener: certificate and key; with a client CA, mutual TLS.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    # The HTTP listener (/metrics), e.g. "localhost:9464"; None: off.
    http_listen: str | None = None
    # Connections at once on each listener (further ones are refused), and how long a
    # connection with no call may stay open.
    max_connections: int = 10_000
    idle_seconds: int = 300
    # Live sessions: per user (a further login ends the user's oldest) and in all (a
    # further login ends the least recently seen).
    max_sessions_per_user: int = DEFAULT_MAX_PER_USER
    max_sessions: int = DEFAULT_MAX_TOTAL
    # Whether `listen` and the heartbeat were set (flag or environment): when not, a
    # server that took over an older one keeps the old server's.
    listen_configured: bool = True
    heartbeat_configured: bool = True
    # The first start takes over an older (3.x-5.x) installation: the one in
    # `upgrade_from` when given (it must be there), else, when `upgrade_search` is on,
    # the one at `legacy_data_dir` (the old releases' default location), else a
    # licsrv.db in the data directory.
    upgrade_from: Path | None = None
    upgrade_search: bool = False
    legacy_data_dir: Path = field(default_factory=legacy_default_dir)

    @property
    def database_path(self) -> Path:
        """The SQLite database."""
        return self.data_dir / DATABASE_FILE_NAME

    @property
    def token_path(self) -> Path:
        """The admin token file (owner-only)."""
        return self.data_dir / TOKEN_FILE_NAME

    @property
    def vendor_keys_dir(self) -> Path:
        """A folder of trusted vendor public keys (*.pub)."""
        return self.data_dir / VENDOR_KEYS_DIR_NAME

    @classmethod
    def from_environment(cls) -> ServerConfig:
        """Defaults, overridden by OFFICESTATUS_* environment variables."""
        env = os.environ
        keys = tuple(Path(p) for p in env.get(VENDOR_KEYS_ENV, "").split(os.pathsep) if p)
        return cls(
            data_dir=Path(env[DATA_DIR_ENV]) if env.get(DATA_DIR_ENV) else default_data_dir(),
            listen=env.get(LISTEN_ENV) or DEFAULT_ADDRESS,
            vendor_key_files=keys,
            heartbeat_interval_seconds=check_heartbeat_seconds(env[HEARTBEAT_ENV], HEARTBEAT_ENV)
            if env.get(HEARTBEAT_ENV)
            else 60,
            admin_listen=env.get(ADMIN_LISTEN_ENV) or None,
            http_listen=env.get(HTTP_LISTEN_ENV) or None,
            tls_cert=_path(env.get(TLS_CERT_ENV)),
            tls_key=_path(env.get(TLS_KEY_ENV)),
            tls_client_ca=_path(env.get(TLS_CLIENT_CA_ENV)),
            max_connections=_number(env, MAX_CONNECTIONS_ENV, "max_connections", 10_000),
            idle_seconds=_number(env, IDLE_SECONDS_ENV, "idle_seconds", 300),
            max_sessions_per_user=_count(env, MAX_SESSIONS_PER_USER_ENV, DEFAULT_MAX_PER_USER),
            max_sessions=_count(env, MAX_SESSIONS_ENV, DEFAULT_MAX_TOTAL),
            listen_configured=bool(env.get(LISTEN_ENV)),
            heartbeat_configured=bool(env.get(HEARTBEAT_ENV)),
            upgrade_from=_path(env.get(UPGRADE_FROM_ENV)),
            upgrade_search=True,
            legacy_data_dir=_path(env.get(LEGACY_DATA_DIR_ENV)) or legacy_default_dir(),
        )

    def check(self) -> None:
        """Refuse settings that are out of range or cannot work together."""
        check_address(self.listen, "The listen address")
        if self.admin_listen is not None:
            check_address(self.admin_listen, "The admin listen address")
        if self.http_listen is not None:
            check_address(self.http_listen, "The HTTP listen address")
        check_heartbeat_seconds(self.heartbeat_interval_seconds, "The heartbeat interval")
        check_number(self.max_connections, "The connection limit", "max_connections")
        check_number(self.idle_seconds, "The idle connection time", "idle_seconds")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInput(
                "TLS needs both a certificate (--tls-cert) and its key (--tls-key).",
                reason="TLS_INCOMPLETE",
            )
        for name, value in (
            (f"--max-sessions-per-user ({MAX_SESSIONS_PER_USER_ENV})", self.max_sessions_per_user),
            (f"--max-sessions ({MAX_SESSIONS_ENV})", self.max_sessions),
        ):
            if not 1 <= value <= MAX_SESSIONS_LIMIT:
                raise InvalidInput(
                    f"{name} must be between 1 and {MAX_SESSIONS_LIMIT:,} (it is {value}).",
                    reason="SESSION_LIMIT_INVALID",
                )
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise InvalidInput(
                "Mutual TLS (--tls-client-ca) needs the server's own certificate and key too.",
                reason="TLS_INCOMPLETE",
            )


# The largest session bound accepted: ten sessions for each of 100,000 users.
MAX_SESSIONS_LIMIT = 1_000_000


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a whole number (it is {text!r}).", reason="SESSION_LIMIT_INVALID"
        ) from None


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _number(env: os._Environ[str], name: str, kind: str, default: int) -> int:
    return check_number(env[name], name, kind) if env.get(name) else default
