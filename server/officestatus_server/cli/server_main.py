"""`officestatus-server`: start the license server."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from officestatus_server import __version__, logs
from officestatus_server.app import ServerApp, protobuf_backend
from officestatus_server.config import (
    CONFIG_ENV,
    CONFIG_FILE_NAME,
    SETTINGS,
    Loaded,
    ServerConfig,
    is_postgres,
    load,
    shown_url,
)
from officestatus_server.datadir import InstanceLock
from officestatus_server.errors import LicenseServerError
from officestatus_server.service import utc_now
from officestatus_server.takeover.find import dry_run_text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="officestatus-server",
        description="The OfficeStatus License Server: decides who may use OfficeStatus. "
        "Every setting is an option, an environment variable and a key of the configuration "
        "file (the option's name with underscores); the option wins over the variable, the "
        "variable over the file.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"the configuration file (TOML; env {CONFIG_ENV}; default: {CONFIG_FILE_NAME} in "
        "the data directory, if it is there)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the settings in force and where each came from, then exit",
    )
    for setting in SETTINGS:
        default = "" if setting.default in ("", False) else f", default {setting.default}"
        text = f"{setting.help}; env {setting.env}{default}"
        if setting.flag:
            parser.add_argument(setting.option, action="store_true", default=None, help=text)
        else:
            action = "append" if setting.repeatable else "store"
            parser.add_argument(setting.option, action=action, metavar=setting.metavar, help=text)
    parser.add_argument(
        "--move-to",
        metavar="URL",
        help="copy this server's installation (its SQLite database: users, licenses, "
        "audit log, history, sessions) into the empty PostgreSQL database at URL, verify "
        "the copy, and exit; the server must be stopped, its SQLite file is left as it was",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --upgrade-from: print what the takeover would do, write nothing, and exit "
        "(non-zero where it would be refused)",
    )
    return parser


def _load(args: argparse.Namespace) -> Loaded:
    options = {setting.name: getattr(args, setting.name) for setting in SETTINGS}
    return load(options, os.environ, args.config)


def _toml(value: object) -> str:
    """A value as TOML writes it; None (not set) as the empty string that reads back so."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps("" if value is None else str(value))


def print_config(loaded: Loaded) -> str:
    """The settings in force as a TOML file would set them, each with where it came from."""
    state = "read" if loaded.file_read else "not there"
    lines = [(f"# configuration file: {loaded.file} ({state})", "")]
    for setting in SETTINGS:
        raw = getattr(loaded.config, setting.attribute)
        source = loaded.sources[setting.name]
        if setting.name == "database" and isinstance(raw, str) and shown_url(raw) != raw:
            # Printed to be pasted into a ticket: never with the database's password.
            raw, source = shown_url(raw), f"{source}, its password not shown"
        lines.append((f"{setting.name} = {_toml(raw)}", f"# {source}"))
    width = max(len(line) for line, _ in lines[1:])
    return "\n".join(f"{line:<{width}}  {source}".rstrip() for line, source in lines)


def _admin_line(app: ServerApp) -> list[str]:
    config = app.config
    lines = []
    if config.tls_cert is not None:
        mutual = ", client certificates required" if config.tls_client_ca else ""
        lines.append(f"TLS: on{mutual}")
    if config.admin_listen is not None:
        host = config.admin_listen.rsplit(":", 1)[0]
        lines.append(f"admin service only on {host}:{app.admin_port}")
    if app.http is not None and config.http_listen is not None:
        host = config.http_listen.rsplit(":", 1)[0]
        lines.append(f"metrics: {app.http.scheme}://{host}:{app.http.port}/metrics")
        page = f"{app.http.scheme}://{host}:{app.http.port}/"
        lines.append(f"status page: {page} (sign in with the admin token)")
    return lines


def _ready(app: ServerApp) -> None:
    view = app.service.status()
    host = app.listen.rsplit(":", 1)[0]
    lines = [
        f"OfficeStatus License Server {view.server_version} listening on {host}:{app.port}",
        f"data directory: {app.config.data_dir}",
        *(
            [f"database: {app.config.database_shown} (shared with the other servers on it)"]
            if app.config.shared_database
            else []
        ),
        *_admin_line(app),
        f"admin token: {app.config.token_path} (officestatus-admin on this machine finds it)",
        f"installation id: {view.installation_id}",
        f"protobuf backend: {protobuf_backend()}",
        *([f"took over: {app.service.took_over.summary}"] if app.service.took_over else []),
        f"licensing: {view.summary}",
    ]
    if view.evaluation_ends_at is not None and view.evaluation:
        lines[-1] += f" (evaluation ends {view.evaluation_ends_at.date().isoformat()})"
    print("\n".join(lines), flush=True)


def _dry_run(app: ServerApp) -> int:
    """Print what the takeover would do; write nothing."""
    if app.config.upgrade_from is None:
        print(
            "error: --dry-run needs --upgrade-from DIR (UPGRADE_DRY_RUN_INVALID)", file=sys.stderr
        )
        return 2
    if app.config.database_path.exists():
        print(
            f"error: {app.config.database_path} exists: this server took over already or has "
            "its own installation, and a takeover never overwrites it (UPGRADE_TARGET_EXISTS)",
            file=sys.stderr,
        )
        return 1
    takeover = app.takeover()
    assert takeover is not None  # upgrade_from given: found, or refused
    print(dry_run_text(takeover))
    return 0


async def _move(config: ServerConfig, url: str) -> int:
    """Copy the SQLite installation into an empty PostgreSQL database, verified."""
    from officestatus_server.storage.move import move
    from officestatus_server.storage.postgres import PostgresStore
    from officestatus_server.storage.sqlite import SqliteStore

    if not is_postgres(url):
        print(
            f"error: --move-to needs a postgresql:// URL, not {url!r} (DATABASE_INVALID)",
            file=sys.stderr,
        )
        return 2
    if not config.database_path.exists():
        print(
            f"error: there is no installation to move: {config.database_path} does not "
            "exist (MOVE_SOURCE_MISSING)",
            file=sys.stderr,
        )
        return 1
    lock = InstanceLock(config.data_dir)
    lock.acquire()  # refused while a server runs on this data directory
    source, target = SqliteStore(config.database_path), PostgresStore(url)
    try:
        await source.open(utc_now())
        await target.connect()
        moved = await move(source, target)
    finally:
        await target.close()
        await source.close()
        lock.release()
    rows = ", ".join(f"{n} {table}" for table, n in moved.rows.items() if n)
    print(
        f"moved to {shown_url(url)}: {rows}; audit chain verified "
        f"({moved.audit_checked} records); every table compared row for row."
    )
    print(f"start the servers with --database {shown_url(url)} (with its password)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM or Ctrl-C."""
    args = _parser().parse_args(argv)
    try:
        loaded = _load(args)
        if args.print_config:
            print(print_config(loaded))
            return 0
        config = loaded.config
        logs.configure(config.log_format, config.log_level)
        if args.move_to:
            return asyncio.run(_move(config, args.move_to))
        app = ServerApp(config)
        if args.dry_run:
            return _dry_run(app)
        asyncio.run(app.run_until_signal(_ready))
    except LicenseServerError as exc:
        print(f"error: {exc.message} ({exc.reason})", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
