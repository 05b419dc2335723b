"""The server's configuration: one table of settings, each read from its command-line
option, else its environment variable, else the configuration file, else its default.

Every setting is one row of `SETTINGS` (its TOML key is its long option's name with
underscores, `--heartbeat-seconds` is `heartbeat_seconds`) and one `ServerConfig` field;
`load` applies the precedence and checks every value before anything is written, naming
where a refused value came from (the option, the variable, or the file's path and key).
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from officestatus.paths import (
    DATA_DIR_ENV,
    DATABASE_FILE_NAME,
    DEFAULT_ADDRESS,
    TOKEN_FILE_NAME,
    default_data_dir,
)
from officestatus_server.core.alerts import (
    DEFAULT_SEAT_THRESHOLDS,
    THRESHOLD_MAX,
    THRESHOLD_MIN,
)
from officestatus_server.core.sessions import DEFAULT_MAX_PER_USER, DEFAULT_MAX_TOTAL
from officestatus_server.core.signed_in import DEFAULT_MAX_LAST_LOGINS
from officestatus_server.errors import InvalidInput
from officestatus_server.logs import LOG_FORMATS, LOG_LEVELS

CONFIG_ENV = "OFFICESTATUS_CONFIG"
CONFIG_FILE_NAME = "officestatus.toml"
LISTEN_ENV = "OFFICESTATUS_LISTEN"
VENDOR_KEYS_ENV = "OFFICESTATUS_VENDOR_KEYS"
HEARTBEAT_ENV = "OFFICESTATUS_HEARTBEAT_SECONDS"
MAX_SESSIONS_PER_USER_ENV = "OFFICESTATUS_MAX_SESSIONS_PER_USER"
MAX_SESSIONS_ENV = "OFFICESTATUS_MAX_SESSIONS"
MAX_LAST_LOGINS_ENV = "OFFICESTATUS_MAX_LAST_LOGINS"
VENDOR_KEYS_DIR_NAME = "vendor-keys"
# The heartbeat interval 5.x and later clients are told, in seconds: a session ends after
# three missed heartbeats, so the bounds keep a session between 15 seconds and 3 hours.
HEARTBEAT_SECONDS_MIN = 5
HEARTBEAT_SECONDS_MAX = 3600
# Setting: (lowest, highest) accepted.
RANGES = {
    "heartbeat": (HEARTBEAT_SECONDS_MIN, HEARTBEAT_SECONDS_MAX),
    "max_connections": (1, 1_000_000),
    "idle_seconds": (1, 86_400),
    "usage_flush_seconds": (0, 3600),
}
# The largest session bound accepted: ten sessions for each of 100,000 users.
MAX_SESSIONS_LIMIT = 1_000_000
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


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
    """A whole number within the documented range of `kind`; `setting` names where it
    came from."""
    low, high = RANGES[kind]
    text = str(value).strip()
    whole = not isinstance(value, bool | float) and text.lstrip("-").isdigit()
    number = int(text) if whole and len(text) < 12 else None
    if number is None or not low <= number <= high:
        raise InvalidInput(
            f"{setting} {text!r} is not a whole number from {low} to {high}.",
            reason=f"{kind.upper()}_INVALID",
        )
    return number


def check_heartbeat_seconds(value: object, setting: str) -> int:
    """A heartbeat interval in seconds within the documented range."""
    return check_number(value, setting, "heartbeat")


# --- how each kind of value is read: (raw value, where it came from) -> value -----------
# A raw value is a string from an option or the environment, or any TOML value.

Parse = Callable[[object, str], object]


def _text(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise InvalidInput(f"{where} must be a string (in quotes).", reason="SETTING_INVALID")
    return raw


def _address(raw: object, where: str) -> str:
    return check_address(_text(raw, where), where)


def _optional_address(raw: object, where: str) -> str | None:
    return _address(raw, where) if raw != "" else None


def _path(raw: object, where: str) -> Path | None:
    text = _text(raw, where)
    return Path(text) if text else None


# The URL schemes of a PostgreSQL database (asyncpg's, libpq's).
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def _database(raw: object, where: str) -> str | None:
    """A SQLite file's path, or a postgresql:// URL; "" for the data directory's file."""
    text = _text(raw, where).strip()
    if not text:
        return None
    if "://" in text and not text.lower().startswith(POSTGRES_SCHEMES):
        raise InvalidInput(
            f"{where} {text.split('://')[0]}:// is no database this server knows: give a "
            "SQLite file's path, or a postgresql://user@host:port/database URL.",
            reason="DATABASE_INVALID",
        )
    return text


def is_postgres(database: str | None) -> bool:
    """Whether `database` names a PostgreSQL database (else a SQLite file)."""
    return database is not None and database.lower().startswith(POSTGRES_SCHEMES)


def _data_dir(raw: object, where: str) -> Path:
    return _path(raw, where) or default_data_dir()


def _legacy_dir(raw: object, where: str) -> Path:
    return _path(raw, where) or legacy_default_dir()


def _paths(raw: object, where: str) -> tuple[Path, ...]:
    """A list: repeated options, path-separated in the environment, a TOML array."""
    if isinstance(raw, str):
        return tuple(Path(p) for p in raw.split(os.pathsep) if p)
    if isinstance(raw, list) and all(isinstance(p, str) and p for p in raw):
        return tuple(Path(p) for p in raw)
    raise InvalidInput(
        f'{where} must be a list of file names, e.g. ["/etc/officestatus/vendor.pub"].',
        reason="SETTING_INVALID",
    )


def _switch(raw: object, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise InvalidInput(
        f"{where} {raw!r} is not one of true, false (or 1, 0, yes, no).", reason="SETTING_INVALID"
    )


def _ranged(kind: str) -> Parse:
    return lambda raw, where: check_number(raw, where, kind)


def _session_bound(option: str, env: str) -> Parse:
    def parse(raw: object, where: str) -> int:
        text = str(raw).strip()
        if isinstance(raw, bool | float) or not text.lstrip("-").isdigit():
            raise InvalidInput(
                f"{where} must be a whole number (it is {text!r}).", reason="SESSION_LIMIT_INVALID"
            )
        value = int(text)
        # From an option or the environment, the wording 6.0 printed.
        name = where if where not in (option, env) else f"{option} ({env})"
        if not 1 <= value <= MAX_SESSIONS_LIMIT:
            raise InvalidInput(
                f"{name} must be between 1 and {MAX_SESSIONS_LIMIT:,} (it is {value}).",
                reason="SESSION_LIMIT_INVALID",
            )
        return value

    return parse


def _percents(raw: object, where: str) -> tuple[int, ...]:
    """Seat alert thresholds: "90,100" from an option or the environment, [90, 100] in
    the file; each a whole percentage of the seats from 1 to 1000, at least one."""
    items = raw.split(",") if isinstance(raw, str) else raw
    found: list[int] = []
    if isinstance(items, list | tuple):
        for item in items:
            text = str(item).strip()
            if isinstance(item, bool | float) or not text.isdigit() or len(text) > 4:
                break
            if not THRESHOLD_MIN <= int(text) <= THRESHOLD_MAX:
                break
            found.append(int(text))
        else:
            if found:
                return tuple(sorted(set(found)))
    shown = raw if isinstance(raw, str) else list(raw) if isinstance(raw, tuple) else raw
    raise InvalidInput(
        f"{where} {shown!r} is not a list of whole percentages of the seats from "
        f"{THRESHOLD_MIN} to {THRESHOLD_MAX}, e.g. 90,100 (in the configuration file: "
        "[90, 100]).",
        reason="SEAT_ALERT_INVALID",
    )


def _choice(*choices: str) -> Parse:
    def parse(raw: object, where: str) -> str:
        text = _text(raw, where).strip().lower()
        if text not in choices:
            raise InvalidInput(
                f"{where} {raw!r} is not one of {', '.join(choices)}.", reason="SETTING_INVALID"
            )
        return text

    return parse


def shown_url(url: str) -> str:
    """A database URL with its password, if any, left out."""
    scheme, _, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}@{host}" if user else f"{scheme}://{host}"


@dataclass(frozen=True)
class Setting:
    """One setting: its TOML key (`name`), option, environment variable, default, how
    its value is read and checked, and its help text."""

    name: str
    env: str
    # The default, as a raw value (read by `parse` like any other).
    default: object
    parse: Parse
    help: str
    # The ServerConfig field, where it is not `name`.
    field: str = ""
    metavar: str | None = None
    # An option without a value (--no-upgrade); `repeatable`: an option given many times.
    flag: bool = False
    repeatable: bool = False

    @property
    def option(self) -> str:
        """The long option."""
        return "--" + self.name.replace("_", "-")

    @property
    def attribute(self) -> str:
        """The ServerConfig field this setting fills."""
        return self.field or self.name


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        DATA_DIR_ENV,
        "",
        _data_dir,
        "where the database and admin token live (default: the platform's data folder)",
        metavar="DIR",
    ),
    Setting(
        "database",
        "OFFICESTATUS_DATABASE",
        "",
        _database,
        "the database: a SQLite file (default: officestatus.db in the data directory), or "
        "a PostgreSQL URL, postgresql://user:password@host:5432/officestatus, which "
        "several servers may share",
        metavar="PATH|URL",
    ),
    Setting(
        "listen",
        LISTEN_ENV,
        DEFAULT_ADDRESS,
        _address,
        "host:port to listen on (port 0 picks a free port)",
        metavar="HOST:PORT",
    ),
    Setting(
        "admin_listen",
        "OFFICESTATUS_ADMIN_LISTEN",
        "",
        _optional_address,
        "serve the admin service only here, e.g. localhost:50052, while --listen serves "
        "the clients (default: both on --listen)",
        metavar="HOST:PORT",
    ),
    Setting(
        "http_listen",
        "OFFICESTATUS_HTTP_LISTEN",
        "",
        _optional_address,
        "serve the status page at http://HOST:PORT/ and Prometheus metrics at /metrics, "
        "e.g. localhost:8465; port 0 picks a free port (default: off)",
        metavar="HOST:PORT",
    ),
    Setting(
        "vendor_key",
        VENDOR_KEYS_ENV,
        "",
        _paths,
        "a trusted vendor public key file (repeatable; the environment variable takes a "
        "path-separated list); *.pub files in <data-dir>/vendor-keys/ are trusted too",
        field="vendor_key_files",
        metavar="FILE",
        repeatable=True,
    ),
    Setting(
        "heartbeat_seconds",
        HEARTBEAT_ENV,
        60,
        _ranged("heartbeat"),
        f"heartbeat interval for 5.x and later clients, {HEARTBEAT_SECONDS_MIN} to "
        f"{HEARTBEAT_SECONDS_MAX} seconds",
        field="heartbeat_interval_seconds",
        metavar="SECONDS",
    ),
    Setting(
        "seat_alert_percent",
        "OFFICESTATUS_SEAT_ALERT_PERCENT",
        ",".join(str(t) for t in DEFAULT_SEAT_THRESHOLDS),
        _percents,
        "warn (log, status, metrics) once when the enabled users reach these percentages "
        "of the seats, comma-separated, each 1 to 1000 (default: 90,100)",
        metavar="PERCENTS",
    ),
    Setting(
        "max_sessions_per_user",
        MAX_SESSIONS_PER_USER_ENV,
        DEFAULT_MAX_PER_USER,
        _session_bound("--max-sessions-per-user", MAX_SESSIONS_PER_USER_ENV),
        "live sessions a user may hold; a further login ends the user's oldest",
        metavar="N",
    ),
    Setting(
        "max_sessions",
        MAX_SESSIONS_ENV,
        DEFAULT_MAX_TOTAL,
        _session_bound("--max-sessions", MAX_SESSIONS_ENV),
        "live sessions in all; a further login ends the least recently seen",
        metavar="N",
    ),
    Setting(
        "max_last_logins",
        MAX_LAST_LOGINS_ENV,
        DEFAULT_MAX_LAST_LOGINS,
        _session_bound("--max-last-logins", MAX_LAST_LOGINS_ENV),
        "last logins of 3.x and 4.x clients kept, per user and machine; a further one "
        "forgets the oldest",
        metavar="N",
    ),
    Setting(
        "usage_flush_seconds",
        "OFFICESTATUS_USAGE_FLUSH_SECONDS",
        60,
        _ranged("usage_flush_seconds"),
        "write the usage history (officestatus-admin usage) to the database this often, 0 "
        "to 3600 s; a crash loses at most this much of it; 0: keep no history",
        metavar="SECONDS",
    ),
    Setting(
        "max_connections",
        "OFFICESTATUS_MAX_CONNECTIONS",
        10_000,
        _ranged("max_connections"),
        "connections at once on each listener, further ones refused",
        metavar="N",
    ),
    Setting(
        "idle_seconds",
        "OFFICESTATUS_IDLE_SECONDS",
        300,
        _ranged("idle_seconds"),
        "close a connection that has had no call for this long, 1 to 86400 s",
        metavar="SECONDS",
    ),
    Setting(
        "tls_cert",
        "OFFICESTATUS_TLS_CERT",
        "",
        _path,
        "TLS certificate (PEM) for every listener",
        metavar="FILE",
    ),
    Setting(
        "tls_key",
        "OFFICESTATUS_TLS_KEY",
        "",
        _path,
        "the TLS certificate's private key (PEM)",
        metavar="FILE",
    ),
    Setting(
        "tls_client_ca",
        "OFFICESTATUS_TLS_CLIENT_CA",
        "",
        _path,
        "mutual TLS: accept only clients with a certificate signed by this CA (PEM)",
        metavar="FILE",
    ),
    Setting(
        "upgrade_from",
        "OFFICESTATUS_UPGRADE_FROM",
        "",
        _path,
        "at the first start, take over the 3.x, 4.x or 5.x server whose data is in DIR "
        "(default: the old releases' default location, else a licsrv.db in the data "
        "directory)",
        metavar="DIR",
    ),
    Setting(
        "no_upgrade",
        "OFFICESTATUS_NO_UPGRADE",
        False,
        _switch,
        "do not look for an older server at the old releases' default location",
        flag=True,
    ),
    Setting(
        "legacy_data_dir",
        "OFFICESTATUS_LEGACY_DATA_DIR",
        "",
        _legacy_dir,
        "the old releases' default location, where the first start looks for a server to "
        "take over (default: /var/lib/officestatus; Windows: "
        r"%%PROGRAMDATA%%\OfficeStatus\Server)",
        metavar="DIR",
    ),
    Setting(
        "log_format",
        "OFFICESTATUS_LOG_FORMAT",
        "text",
        _choice(*LOG_FORMATS),
        "the log on stderr, one line per event: text, or json (one JSON object a line)",
        metavar="|".join(LOG_FORMATS),
    ),
    Setting(
        "log_level",
        "OFFICESTATUS_LOG_LEVEL",
        "info",
        _choice(*LOG_LEVELS),
        "the least severe events logged: debug (also every granted login), info (also "
        "every refused login), warning or error",
        metavar="|".join(LOG_LEVELS),
    ),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True)
class ServerConfig:
    """Where the server keeps its data, where it listens, whom it trusts: one field per
    row of SETTINGS (same defaults), and what the server derives from them."""

    data_dir: Path = field(default_factory=default_data_dir)
    # A SQLite file's path or a postgresql:// URL; None: officestatus.db in data_dir.
    database: str | None = None
    listen: str = DEFAULT_ADDRESS
    # Where the admin service listens when it must not be reachable from the network
    # (e.g. "localhost:50052"); None: beside the client service on `listen`.
    admin_listen: str | None = None
    # The HTTP listener (/metrics), e.g. "localhost:9464"; None: off.
    http_listen: str | None = None
    # Vendor public key files, in addition to those in <data_dir>/vendor-keys/.
    vendor_key_files: tuple[Path, ...] = ()
    heartbeat_interval_seconds: int = 60
    # Seat alerts: percentages of the seats that, once reached, warn (once per crossing).
    seat_alert_percent: tuple[int, ...] = DEFAULT_SEAT_THRESHOLDS
    # Live sessions: per user (a further login ends the user's oldest) and in all (a
    # further login ends the least recently seen).
    max_sessions_per_user: int = DEFAULT_MAX_PER_USER
    max_sessions: int = DEFAULT_MAX_TOTAL
    # The last logins of 3.x and 4.x clients kept, per user and machine (a further one
    # forgets the oldest).
    max_last_logins: int = DEFAULT_MAX_LAST_LOGINS
    # How often the usage history is written down (a crash loses at most this much of
    # it); 0: no history is kept.
    usage_flush_seconds: int = 60
    # Connections at once on each listener (further ones are refused), and how long a
    # connection with no call may stay open.
    max_connections: int = 10_000
    idle_seconds: int = 300
    # TLS for every listener: certificate and key; with a client CA, mutual TLS.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    # The first start takes over an older (3.x-5.x) installation: the one in
    # `upgrade_from` when given (it must be there), else, unless `no_upgrade`, the one at
    # `legacy_data_dir` (the old releases' default location), else a licsrv.db in the
    # data directory.
    upgrade_from: Path | None = None
    no_upgrade: bool = False
    legacy_data_dir: Path = field(default_factory=legacy_default_dir)
    # The log on stderr: "text" or "json" lines, and the least severe level logged.
    log_format: str = "text"
    log_level: str = "info"
    # Not settings: how long a stop waits for calls in progress; whether `listen` and the
    # heartbeat were set (when not, a server that took over an older one keeps the old
    # server's).
    shutdown_grace_seconds: float = 10.0
    listen_configured: bool = True
    heartbeat_configured: bool = True

    @property
    def shared_database(self) -> bool:
        """Whether the database is PostgreSQL's (which several servers may share)."""
        return is_postgres(self.database)

    @property
    def database_path(self) -> Path:
        """The SQLite database (its default place, with a PostgreSQL database: unused)."""
        if self.database is not None and not self.shared_database:
            return Path(self.database)
        return self.data_dir / DATABASE_FILE_NAME

    @property
    def database_shown(self) -> str:
        """The database as a person may see it: a file, or a URL without its password."""
        if not self.shared_database or self.database is None:
            return str(self.database_path)
        return shown_url(self.database)

    @property
    def token_path(self) -> Path:
        """The admin token file (owner-only)."""
        return self.data_dir / TOKEN_FILE_NAME

    @property
    def vendor_keys_dir(self) -> Path:
        """A folder of trusted vendor public keys (*.pub)."""
        return self.data_dir / VENDOR_KEYS_DIR_NAME

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
        check_number(self.usage_flush_seconds, "The usage flush interval", "usage_flush_seconds")
        _percents(self.seat_alert_percent, BY_NAME["seat_alert_percent"].option)
        for name in ("max_sessions_per_user", "max_sessions", "max_last_logins"):
            setting = BY_NAME[name]
            setting.parse(getattr(self, name), setting.option)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInput(
                "TLS needs both a certificate (--tls-cert) and its key (--tls-key).",
                reason="TLS_INCOMPLETE",
            )
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise InvalidInput(
                "Mutual TLS (--tls-client-ca) needs the server's own certificate and key too.",
                reason="TLS_INCOMPLETE",
            )


@dataclass(frozen=True)
class Loaded:
    """The settings in force and where each came from."""

    config: ServerConfig
    # Setting name: "option --listen", "environment OFFICESTATUS_LISTEN",
    # "file /etc/officestatus-server/officestatus.toml" or "default".
    sources: Mapping[str, str]
    # The configuration file looked for, and whether it was there.
    file: Path
    file_read: bool


def load(options: Mapping[str, object], env: Mapping[str, str], config_file: Path | None) -> Loaded:
    """The configuration from the options given (name: raw value, only those given), the
    environment and the configuration file (`config_file`, else $OFFICESTATUS_CONFIG,
    else officestatus.toml in the data directory, which may be absent); refused with
    InvalidInput naming the option, variable or file and key."""
    named = config_file or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    explicit = named.absolute() if named is not None else None
    if explicit is not None:
        path, file_values = explicit, _read_file(explicit, required=True)
    else:
        data_dir = BY_NAME["data_dir"]
        raw, source = _pick(data_dir, options, env, {})
        path = _data_dir(raw, data_dir.option if source == "option" else data_dir.env)
        path = path / CONFIG_FILE_NAME
        file_values = _read_file(path, required=False)
        if file_values is not None and "data_dir" in file_values:
            raise InvalidInput(
                f"{path}: data_dir cannot be set in the data directory's own file; give it "
                f"with --data-dir or {DATA_DIR_ENV}, or in a file named by --config or "
                f"{CONFIG_ENV}.",
                reason="CONFIG_INVALID",
            )
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        raw, source = _pick(setting, options, env, file_values or {})
        where, sources[setting.name] = {
            "option": (setting.option, f"option {setting.option}"),
            "environment": (setting.env, f"environment {setting.env}"),
            "file": (f"{path}: {setting.name}", f"file {path}"),
            "default": (setting.option, "default"),
        }[source]
        values[setting.attribute] = setting.parse(raw, where)
    config = ServerConfig(
        **values,  # type: ignore[arg-type]
        listen_configured=sources["listen"] != "default",
        heartbeat_configured=sources["heartbeat_seconds"] != "default",
    )
    config.check()
    return Loaded(config, sources, path, file_values is not None)


def _pick(
    setting: Setting,
    options: Mapping[str, object],
    env: Mapping[str, str],
    file_values: Mapping[str, object],
) -> tuple[object, str]:
    """The raw value in force and its source: option > environment > file > default."""
    if options.get(setting.name) not in (None, [], False):
        return options[setting.name], "option"
    if env.get(setting.env):
        return env[setting.env], "environment"
    if setting.name in file_values:
        return file_values[setting.name], "file"
    return setting.default, "default"


def _read_file(path: Path, required: bool) -> dict[str, object] | None:
    """The file's settings by key (None: no such file, and none was required); refused
    when unreadable, not TOML, or with a key that is no setting."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        if not required:
            return None
        raise InvalidInput(
            f"The configuration file {path} does not exist.", reason="CONFIG_MISSING"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"{path}: cannot read this configuration file: {exc}.", reason="CONFIG_INVALID"
        ) from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(
            f"{path}: this configuration file is not valid TOML: {exc}.", reason="CONFIG_INVALID"
        ) from exc
    unknown = [key for key in document if key not in BY_NAME]
    if unknown:
        raise InvalidInput(
            f"{path}: {unknown[0]!r} is not a setting. The settings are: "
            f"{', '.join(BY_NAME)} (the long options' names with underscores).",
            reason="CONFIG_INVALID",
        )
    return dict(document)
