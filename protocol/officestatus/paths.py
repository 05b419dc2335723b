"""Where a server keeps its data by default, and the names of its files: the server keeps
them there, and the admin CLI on the same machine finds the admin token without being
told."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DATA_DIR_ENV = "OFFICESTATUS_DATA_DIR"
TOKEN_FILE_NAME = "admin-token"
DATABASE_FILE_NAME = "officestatus.db"
DEFAULT_ADDRESS = "localhost:50051"


def default_data_dir() -> Path:
    """$OFFICESTATUS_DATA_DIR, else the platform's place for a service's data."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured)
    if sys.platform == "win32":
        base = Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData"))
        return base / "OfficeStatus" / "LicenseServer"
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "officestatus-server"


def token_path(data_dir: Path | None = None) -> Path:
    """The admin token file in a data directory."""
    return (data_dir or default_data_dir()) / TOKEN_FILE_NAME
