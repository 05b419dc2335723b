"""Finding the older installation a first start takes over, and planning the takeover.

Where to look, in order: the directory given (`--upgrade-from`, which must hold one), the
old releases' default location (unless `--no-upgrade`), and a `licsrv.db` in the 6.x
data directory. A 2.x directory (`OSSERVER.INI`, no `licsrv.db`) is recognised and
refused with the steps that upgrade it.
"""

from __future__ import annotations

import errno
import socket
from datetime import datetime
from functools import partial
from pathlib import Path

from officestatus_server.config import ServerConfig
from officestatus_server.core.keys import TrustStore
from officestatus_server.core.legacy_keys import read_legacy_key
from officestatus_server.core.takeover import Takeover, plan_takeover
from officestatus_server.errors import PreconditionFailed
from officestatus_server.takeover.read import DATABASE, read_legacy

TWO_X_MARKER = "OSSERVER.INI"
TWO_X_STEPS = """\
1. On the 2.x server, export the users: run osexport.exe, which writes users.csv.
2. Stop the 2.x server and remove it (its data stays where it is).
3. Start the OfficeStatus License Server 6 (officestatus-server --no-upgrade).
4. Import the users: officestatus-admin user import users.csv
5. E-mail your 2.x serial numbers (OS2-XXXX-XXXX-XXXX) to Key Metric Software for an
   upgrade; install the license keys you receive with officestatus-admin license install."""


def _two_x(directory: Path) -> PreconditionFailed:
    return PreconditionFailed(
        f"{directory} holds an OfficeStatus Server 2.x installation ({TWO_X_MARKER}), which "
        "cannot be taken over automatically. The steps:\n" + TWO_X_STEPS,
        reason="UPGRADE_FROM_2X",
    )


def find_old_installation(config: ServerConfig) -> Path | None:
    """The directory of the older installation to take over, or None."""
    if config.upgrade_from is not None:
        directory = config.upgrade_from
        if (directory / DATABASE).is_file():
            return directory
        if (directory / TWO_X_MARKER).is_file():
            raise _two_x(directory)
        raise PreconditionFailed(
            f"--upgrade-from {directory}: there is no {DATABASE} there, so no 3.x, 4.x or 5.x "
            "OfficeStatus Server installation to take over. Give the directory the old "
            "server keeps its data in (on Linux /var/lib/officestatus, on Windows "
            r"%PROGRAMDATA%\OfficeStatus\Server).",
            reason="UPGRADE_SOURCE_MISSING",
        )
    candidates = [] if config.no_upgrade else [config.legacy_data_dir]
    candidates.append(config.data_dir)
    for directory in candidates:
        if (directory / DATABASE).is_file():
            return directory
    for directory in candidates:
        if (directory / TWO_X_MARKER).is_file():
            raise _two_x(directory)
    return None


def _port_in_use(host: str | None, port: int) -> bool:
    family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host or "", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def plan(directory: Path, trust: TrustStore, now: datetime) -> Takeover:
    """Read the old installation and plan its takeover; refused while it still runs."""
    old = read_legacy(directory)
    if old.port and _port_in_use(old.listen_host, old.port):
        raise PreconditionFailed(
            f"Cannot take over the older installation at {directory / DATABASE}: its port "
            f"{old.port} is in use, so the old server is still running. Stop the old "
            "OfficeStatus Server service, then start this server again. Nothing was written.",
            reason="UPGRADE_SOURCE_IN_USE",
        )
    return plan_takeover(old, partial(read_legacy_key, trust=trust), str(directory), now)


def dry_run_text(takeover: Takeover) -> str:
    """What a takeover would do, item by item."""
    lines = [f"dry run: {takeover.summary}", "nothing was written", ""]
    lines += [f"  {item.line()}" for item in takeover.items]
    return "\n".join(lines)
