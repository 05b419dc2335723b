"""Test helpers: a vendor that issues real signed keys, a clock the tests move, and a
real server on a free port with a real SQLite file."""

from __future__ import annotations

import io
import itertools
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from officestatus_client.admin_cli import run as admin_run
from officestatus_server.app import ServerApp
from officestatus_server.config import ServerConfig
from officestatus_server.core.keys import (
    LicenseKey,
    LicenseKind,
    SigningKey,
    TrustStore,
    armour,
    sign_key,
)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)


@dataclass
class FakeClock:
    """A clock the test moves by hand: time is passed in, never slept."""

    now: datetime = START
    # Seconds on the monotonic clock: moves only as time passes.
    elapsed: float = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        """The monotonic clock (time.monotonic's stand-in)."""
        return self.elapsed

    def advance(self, **kwargs: float) -> None:
        """Let time pass (both clocks move); a negative amount sets the wall clock back,
        as a person or a time sync would, while the monotonic clock stands."""
        step = timedelta(**kwargs)
        self.now += step
        self.elapsed += max(step.total_seconds(), 0.0)

    def jump(self, **kwargs: float) -> None:
        """Set the wall clock ahead or back; no time passes."""
        self.now += timedelta(**kwargs)


@dataclass
class Vendor:
    """Key Metric Software, for tests: a real Ed25519 signing key."""

    signing: SigningKey = field(default_factory=lambda: SigningKey.generate("kms-test"))

    @property
    def trust(self) -> TrustStore:
        """A trust store holding this vendor's public key."""
        return TrustStore.from_public_key_texts([self.signing.public_text()])

    def write_public_key(self, folder: Path) -> Path:
        """The public key file, as a server is configured with."""
        path = folder / f"{self.signing.key_id}.pub"
        path.write_text(self.signing.public_text())
        return path

    def key(
        self,
        seats: int = 25,
        *,
        major: int = 6,
        kind: LicenseKind = LicenseKind.PURCHASED,
        license_id: str | None = None,
        customer: str = "Acme Ltd",
        purchased: date = date(2026, 11, 1),
        installation_id: str | None = None,
        evaluation_until: date | None = None,
        upgrades: str | None = None,
    ) -> LicenseKey:
        """A license key's content."""
        return LicenseKey(
            signing_key_id=self.signing.key_id,
            license_id=license_id or f"L-{next(_ids):06d}",
            major_version=major,
            seats=seats,
            kind=kind,
            customer=customer,
            purchase_date=purchased,
            issue_date=purchased,
            upgrades_license_id=upgrades,
            installation_id=installation_id,
            evaluation_until=evaluation_until,
        )

    def issue(self, seats: int = 25, **kwargs: object) -> str:
        """A signed, armoured key text, as the vendor e-mails it."""
        return armour(sign_key(self.key(seats, **kwargs), self.signing.private_key))  # type: ignore[arg-type]

    def extension(self, installation_id: str, until: date, **kwargs: object) -> str:
        """A signed evaluation extension for an installation."""
        return self.issue(
            0,
            kind=LicenseKind.EVALUATION_EXTENSION,
            installation_id=installation_id,
            evaluation_until=until,
            **kwargs,
        )


class RunningServer:
    """A real server in this process: real gRPC on a free port, real SQLite file."""

    def __init__(self, data_dir: Path, vendor: Vendor, clock: FakeClock) -> None:
        self.data_dir = data_dir
        self.vendor = vendor
        self.clock = clock
        data_dir.mkdir(parents=True, exist_ok=True)
        self.config = ServerConfig(
            data_dir=data_dir,
            listen="127.0.0.1:0",
            vendor_key_files=(vendor.write_public_key(data_dir.parent),),
            heartbeat_interval_seconds=30,
            # Never the old releases' real default location: not the test's.
            no_upgrade=True,
        )
        self.app: ServerApp | None = None
        self.address = ""

    @property
    def token(self) -> str:
        assert self.app is not None
        return self.app.token

    async def start(self) -> RunningServer:
        self.app = ServerApp(self.config, clock=self.clock, monotonic=self.clock.monotonic)
        port = await self.app.start()
        self.address = f"127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop(grace=None)
            self.app = None

    async def restart(self, edit: Callable[[sqlite3.Connection], object] | None = None) -> None:
        """Stop and start again on the same data (a new port); with `edit`, the database is
        changed behind the server's back while it is stopped."""
        await self.stop()
        if edit is not None:
            db = sqlite3.connect(self.config.database_path)
            try:
                edit(db)
                db.commit()
            finally:
                db.close()
        await self.start()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def admin_cli(server: RunningServer, *argv: str) -> tuple[int, str, str]:
    """Run officestatus-admin against `server` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = await admin_run(
        ["--address", server.address, "--data-dir", str(server.data_dir), *argv], out, err
    )
    return code, out.getvalue(), err.getvalue()
