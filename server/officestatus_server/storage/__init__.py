"""Where the server keeps its state: a small interface and its SQLite implementation."""

from officestatus_server.storage.base import Store, Stored, StoredLicense
from officestatus_server.storage.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "Stored", "StoredLicense"]
