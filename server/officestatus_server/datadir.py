"""The data directory: one server at a time, and never a silent new installation.

A server holds `officestatus-server.lock` for as long as it runs (an OS file lock through
`filelock`: the operating system lets go of it when the process ends, however it ends, so
a server killed with SIGKILL never blocks the next start) and writes its pid and address
to `officestatus-server.run` beside it, so a second server started on the same directory
can say which server holds it.

A new installation (a fresh id and a fresh 30-day evaluation) begins only in a data
directory that holds nothing of an earlier one. What counts as a trace: the database, its
WAL or shared-memory file, the admin token, a backup. Finding one without a usable
database, the server refuses to start, names what it found and says how to restore a
backup; it changes and deletes nothing.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import filelock

from officestatus_server.errors import PreconditionFailed
from officestatus_server.storage.sqlite import RESTORE_HINT
from officestatus_server.takeover.read import DATABASE as LEGACY_DATABASE

LOCK_FILE_NAME = "officestatus-server.lock"
RUN_FILE_NAME = "officestatus-server.run"


@dataclass(frozen=True)
class Traces:
    """What an earlier installation left in a data directory."""

    database: Path
    found: tuple[Path, ...]

    @property
    def empty(self) -> bool:
        """Nothing there: a new installation may begin."""
        return not self.found


def traces(data_dir: Path, database: Path, token: Path) -> Traces:
    """The files in `data_dir` that show an installation was there."""
    names = [database, Path(f"{database}-wal"), Path(f"{database}-shm"), token]
    found = [p for p in names if p.exists() or p.is_symlink()]
    if data_dir.is_dir():
        found += sorted(
            p
            for p in data_dir.iterdir()
            if p not in names
            and p.name != LEGACY_DATABASE
            and ("backup" in p.name.lower() or p.suffix in {".bak", ".db"})
        )
    return Traces(database, tuple(found))


def refuse_orphans(found: Traces) -> None:
    """Refuse to start when the database is missing but other traces of it are there."""
    if found.empty or found.database in found.found:
        return
    listed = ", ".join(_describe(p) for p in found.found)
    raise PreconditionFailed(
        f"The data directory {found.database.parent} holds {listed}, but no "
        f"{found.database.name}: an installation was here and its database is gone. The "
        f"server will not start a new installation over it. {RESTORE_HINT}",
        reason="DATABASE_MISSING",
    )


def _describe(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        return path.name
    return f"{path.name} ({size:,} bytes)"


def unusable_files(data_dir: Path) -> list[str]:
    """Files in `data_dir` this process cannot read and write, with owner and mode: what a
    server run as another user (or a hand-made copy) left behind."""
    if not data_dir.is_dir():
        return []
    problems = []
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    for path in sorted([data_dir, *data_dir.iterdir()]):
        try:
            info = path.lstat()
        except OSError:
            continue
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            continue
        if os.access(path, os.R_OK | os.W_OK):
            continue
        owner = f"owner uid {info.st_uid}" + (" (not this user)" if info.st_uid != uid else "")
        problems.append(f"{path.name or path} ({owner}, mode {stat.S_IMODE(info.st_mode):o})")
    return problems


class InstanceLock:
    """Held for the life of a server: a second server on the same data directory is
    refused before it opens the database or writes anything else."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = filelock.FileLock(data_dir / LOCK_FILE_NAME, timeout=0, mode=0o600)
        self._run_file = data_dir / RUN_FILE_NAME

    def acquire(self) -> None:
        """Take the lock, or refuse naming the server that holds it."""
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock.acquire()
        except filelock.Timeout:
            raise PreconditionFailed(
                f"Another OfficeStatus License Server is running on the data directory "
                f"{self.data_dir}{self._holder()}. Stop it first, or give this server a "
                "data directory of its own (--data-dir).",
                reason="DATA_DIR_IN_USE",
            ) from None
        except OSError as exc:
            raise PreconditionFailed(
                f"Cannot lock the data directory {self.data_dir}: {exc.strerror}. Check "
                "that it exists and that this user may write to it.",
                reason="DATA_DIR_UNUSABLE",
            ) from exc

    def _holder(self) -> str:
        try:
            run = json.loads(self._run_file.read_text(encoding="utf-8"))
            return f" (pid {int(run['pid'])}, listening on {run['address']})"
        except (OSError, ValueError, KeyError, TypeError):
            return " (it has not said yet where it listens)"

    def announce(self, address: str) -> None:
        """Write down this server's pid and address, for a second server's message."""
        text = json.dumps({"pid": os.getpid(), "address": address})
        tmp = self._run_file.with_suffix(".run.tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        os.replace(tmp, self._run_file)

    def release(self) -> None:
        """Let go of the lock (the run file goes first: it names a running server)."""
        if self._lock.is_locked:
            self._run_file.unlink(missing_ok=True)
            self._lock.release()
