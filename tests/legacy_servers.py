"""Installations of the deployed 3.x, 4.x and 5.x servers, built for the tests.

Everything here follows `legacy-servers.md` (the shared description of what those servers
keep on disk) and nothing of the 6.x server's own code: the schemas are that page's SQL,
the keys its `OSK-` format signed with a real Ed25519 key, so a takeover that misreads the
page fails here rather than agreeing with itself.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DATABASE = "licsrv.db"

SCHEMA_3 = """
CREATE TABLE server (
  installation_id TEXT NOT NULL,
  installed_at    TEXT NOT NULL,
  port            INTEGER NOT NULL
);
CREATE TABLE licenses (
  license_key TEXT NOT NULL UNIQUE,
  added_at    TEXT NOT NULL
);
CREATE TABLE users (
  name     TEXT NOT NULL UNIQUE,
  enabled  INTEGER NOT NULL,
  added_at TEXT NOT NULL
);
"""
SCHEMA_4 = """
ALTER TABLE server ADD COLUMN listen_host TEXT;
ALTER TABLE users  ADD COLUMN enabled_at TEXT;
CREATE UNIQUE INDEX users_name_nocase ON users (name COLLATE NOCASE);
CREATE TABLE evaluation_extensions (
  license_key TEXT NOT NULL UNIQUE,
  added_at    TEXT NOT NULL
);
CREATE TABLE audit (
  id     INTEGER PRIMARY KEY,
  at     TEXT NOT NULL,
  actor  TEXT NOT NULL,
  action TEXT NOT NULL,
  detail TEXT NOT NULL
);
"""
SCHEMA_5 = """
ALTER TABLE server ADD COLUMN heartbeat_seconds INTEGER NOT NULL DEFAULT 60;
CREATE TABLE sessions (
  session_id     TEXT PRIMARY KEY,
  user_name      TEXT NOT NULL,
  client_version TEXT NOT NULL,
  machine_name   TEXT NOT NULL,
  started_at     TEXT NOT NULL,
  last_seen_at   TEXT NOT NULL
);
"""
SCHEMAS = {3: [SCHEMA_3], 4: [SCHEMA_3, SCHEMA_4], 5: [SCHEMA_3, SCHEMA_4, SCHEMA_5]}


def sql_time(moment: datetime) -> str:
    """SQLite's own `datetime('now')` format, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _base32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace(";", "%3B").replace("=", "%3D")


@dataclass
class LegacyVendor:
    """Key Metric Software's signing key of the 3.x-5.x releases, by its id."""

    kid: str = "kms-2019"
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def public_raw(self) -> bytes:
        """The 32 raw bytes of the public key."""
        from cryptography.hazmat.primitives import serialization

        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def key(
        self,
        license_id: str,
        *,
        major: int,
        kind: str = "purchased",
        seats: int = 10,
        customer: str = "Contoso Ltd",
        purchased: str = "2021-03-01",
        issued: str | None = None,
        installation: str | None = None,
        until: str | None = None,
        upgrades: str | None = None,
    ) -> str:
        """An `OSK-` key, its fields in the page's order, signed over the payload text."""
        fields = [
            ("fmt", "1"),
            ("kid", self.kid),
            ("id", license_id),
            ("product", "OfficeStatus"),
            ("major", str(major)),
            ("kind", kind),
            ("seats", str(seats)),
            ("customer", customer),
            ("purchased", purchased),
            ("issued", issued or purchased),
        ]
        if kind == "extension":
            fields += [("installation", installation or ""), ("until", until or "")]
        if upgrades is not None:
            fields.append(("upgrades", upgrades))
        text = ";".join(f"{name}={_escape(value)}" for name, value in fields)
        payload = text.encode("utf-8")
        return f"OSK-{_base32(payload)}-{_base32(self.private.sign(payload))}"


def flip_one_byte(key: str) -> str:
    """The key with one character of its payload changed (still valid base32)."""
    at = len("OSK-") + 5
    replacement = "A" if key[at] != "A" else "B"
    return key[:at] + replacement + key[at + 1 :]


@dataclass
class LegacyUser:
    name: str
    enabled: bool = True
    added_at: str = "2021-03-01 08:00:00"
    # 4.x/5.x: when last enabled; None for users enabled under 3.x, and disabled users.
    enabled_at: str | None = None


@dataclass
class LegacySession:
    session_id: str
    user_name: str
    last_seen_at: str
    client_version: str = "5.2.0"
    machine_name: str = "PC-01"
    started_at: str = "2026-11-30 08:00:00"


@dataclass
class LegacyInstallation:
    """What one older server holds; `write` makes its `licsrv.db`."""

    release: int
    installation_id: str = "6f1c1e0a-3b7e-4c55-9a57-2c1d8f0e4b21"
    installed_at: str = "2021-03-01 08:00:00"
    port: int = 50051
    listen_host: str | None = None
    heartbeat_seconds: int = 60
    users: list[LegacyUser] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    audit: list[tuple[str, str, str, str]] = field(default_factory=list)
    sessions: list[LegacySession] = field(default_factory=list)

    def write(self, directory: Path) -> Path:
        """The release's database in `directory` (journal mode DELETE, as released)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / DATABASE
        db = sqlite3.connect(path)
        try:
            db.execute("PRAGMA journal_mode=DELETE")
            for script in SCHEMAS[self.release]:
                db.executescript(script)
            db.execute(f"PRAGMA user_version={self.release}")
            self._fill(db)
            db.commit()
        finally:
            db.close()
        return path

    def _fill(self, db: sqlite3.Connection) -> None:
        server = [self.installation_id, self.installed_at, self.port]
        if self.release == 3:
            db.execute("INSERT INTO server VALUES (?, ?, ?)", server)
        elif self.release == 4:
            db.execute("INSERT INTO server VALUES (?, ?, ?, ?)", [*server, self.listen_host])
        else:
            db.execute(
                "INSERT INTO server VALUES (?, ?, ?, ?, ?)",
                [*server, self.listen_host, self.heartbeat_seconds],
            )
        for key in self.licenses:
            db.execute("INSERT INTO licenses VALUES (?, ?)", (key, "2021-03-01 08:00:00"))
        for user in self.users:
            row: list[object] = [user.name, int(user.enabled), user.added_at]
            if self.release >= 4:
                row.append(user.enabled_at)
            db.execute(f"INSERT INTO users VALUES ({', '.join('?' * len(row))})", row)
        if self.release >= 4:
            for key in self.extensions:
                db.execute(
                    "INSERT INTO evaluation_extensions VALUES (?, ?)", (key, "2021-03-02 08:00:00")
                )
            for at, actor, action, detail in self.audit:
                db.execute(
                    "INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)",
                    (at, actor, action, detail),
                )
        if self.release >= 5:
            for s in self.sessions:
                db.execute(
                    "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        s.session_id,
                        s.user_name,
                        s.client_version,
                        s.machine_name,
                        s.started_at,
                        s.last_seen_at,
                    ),
                )


def names(users: Iterable[LegacyUser]) -> list[str]:
    return [u.name for u in users]
