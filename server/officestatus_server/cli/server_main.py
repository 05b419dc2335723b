"""`officestatus-server`: start the license server."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from pathlib import Path

from officestatus_server import __version__
from officestatus_server.app import ServerApp, protobuf_backend
from officestatus_server.config import ServerConfig, check_heartbeat_seconds, check_number
from officestatus_server.errors import LicenseServerError
from officestatus_server.takeover.find import dry_run_text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="officestatus-server",
        description="The OfficeStatus License Server: decides who may use OfficeStatus.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where the database and admin token live "
        "(default: $OFFICESTATUS_DATA_DIR or the platform's data folder)",
    )
    parser.add_argument(
        "--listen",
        help="host:port to listen on (default: $OFFICESTATUS_LISTEN or "
        "localhost:50051; port 0 picks a free port)",
    )
    parser.add_argument(
        "--vendor-key",
        type=Path,
        action="append",
        default=[],
        help="a trusted vendor public key file (repeatable); *.pub files in "
        "<data-dir>/vendor-keys/ are trusted too",
    )
    parser.add_argument(
        "--heartbeat-seconds",
        help="heartbeat interval for 5.x and later clients, 5 to 3600 seconds (default: "
        "$OFFICESTATUS_HEARTBEAT_SECONDS or 60)",
    )
    parser.add_argument(
        "--max-sessions-per-user",
        type=int,
        help="live sessions a user may hold; a further login ends the user's oldest "
        "(default: $OFFICESTATUS_MAX_SESSIONS_PER_USER or 10)",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        help="live sessions in all; a further login ends the least recently seen "
        "(default: $OFFICESTATUS_MAX_SESSIONS or 250000)",
    )
    parser.add_argument(
        "--admin-listen",
        help="serve the admin service only here, e.g. localhost:50052, while --listen serves "
        "the clients (default: both on --listen)",
    )
    parser.add_argument(
        "--http-listen",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics, e.g. localhost:9464; "
        "port 0 picks a free port (default: $OFFICESTATUS_HTTP_LISTEN, else off)",
    )
    parser.add_argument(
        "--max-connections",
        help="connections at once on each listener, further ones refused (default: "
        "$OFFICESTATUS_MAX_CONNECTIONS or 10000)",
    )
    parser.add_argument(
        "--idle-seconds",
        help="close a connection that has had no call for this long, 1 to 86400 s (default: "
        "$OFFICESTATUS_IDLE_SECONDS or 300)",
    )
    parser.add_argument(
        "--upgrade-from",
        type=Path,
        metavar="DIR",
        help="at the first start, take over the 3.x, 4.x or 5.x server whose data is in DIR "
        "(default: $OFFICESTATUS_UPGRADE_FROM, else the old releases' default location, else "
        "a licsrv.db in the data directory)",
    )
    parser.add_argument(
        "--no-upgrade",
        action="store_true",
        help="do not look for an older server at the old releases' default location",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --upgrade-from: print what the takeover would do, write nothing, and exit "
        "(non-zero where it would be refused)",
    )
    parser.add_argument("--tls-cert", type=Path, help="TLS certificate (PEM) for every listener")
    parser.add_argument("--tls-key", type=Path, help="the TLS certificate's private key (PEM)")
    parser.add_argument(
        "--tls-client-ca",
        type=Path,
        help="mutual TLS: accept only clients with a certificate signed by this CA (PEM)",
    )
    return parser


def _config(args: argparse.Namespace) -> ServerConfig:
    config = ServerConfig.from_environment()
    changes: dict[str, object] = {}
    if args.data_dir is not None:
        changes["data_dir"] = args.data_dir
    if args.listen:
        changes["listen"] = args.listen
        changes["listen_configured"] = True
    if args.upgrade_from is not None:
        changes["upgrade_from"] = args.upgrade_from
    if args.no_upgrade:
        changes["upgrade_search"] = False
    if args.vendor_key:
        changes["vendor_key_files"] = (*config.vendor_key_files, *args.vendor_key)
    for option in (
        "admin_listen",
        "http_listen",
        "tls_cert",
        "tls_key",
        "tls_client_ca",
        "max_sessions_per_user",
        "max_sessions",
    ):
        if getattr(args, option) is not None:
            changes[option] = getattr(args, option)
    if args.heartbeat_seconds is not None:
        changes["heartbeat_interval_seconds"] = check_heartbeat_seconds(
            args.heartbeat_seconds, "--heartbeat-seconds"
        )
        changes["heartbeat_configured"] = True
    if args.max_connections is not None:
        changes["max_connections"] = check_number(
            args.max_connections, "--max-connections", "max_connections"
        )
    if args.idle_seconds is not None:
        changes["idle_seconds"] = check_number(args.idle_seconds, "--idle-seconds", "idle_seconds")
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


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
    return lines


def _ready(app: ServerApp) -> None:
    view = app.service.status()
    host = app.listen.rsplit(":", 1)[0]
    lines = [
        f"OfficeStatus License Server {view.server_version} listening on {host}:{app.port}",
        f"data directory: {app.config.data_dir}",
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


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM or Ctrl-C."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = _config(args)
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
