"""The license service: the core's rules applied to the stored state, one change at a time.

It keeps the whole registry in memory, consistent with storage: an admin change is
planned by the core under one lock, committed in one transaction, and only then applied
to memory. Logins and heartbeats read memory only, never the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from officestatus_server.core import licensing
from officestatus_server.core.keys import TrustStore, read_key
from officestatus_server.core.licensing import Decision, Registry
from officestatus_server.core.model import AuditEntry, Change, Deny, InstalledLicense, User
from officestatus_server.core.names import name_key
from officestatus_server.core.sessions import SessionTable
from officestatus_server.core.status import StatusView, status_view
from officestatus_server.core.versions import NEWEST_RELEASE, Release
from officestatus_server.errors import KeyRejected, LicenseServerError, StorageError
from officestatus_server.storage.base import Store, StoredLicense

log = logging.getLogger("officestatus.service")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class LoginOutcome:
    """A login decision, with the session it opened (5.x and later, when granted)."""

    decision: Decision
    session_id: str = ""


def _session_release(release: int | None) -> Release:
    """The release a session's replies are shaped for: the oldest with sessions when the
    session id is not genuine, else the release that opened it."""
    if release is None:
        return Release.V5
    return Release(min(max(release, Release.V5), NEWEST_RELEASE))


class LicenseService:
    """Licenses, users and sessions of one installation."""

    def __init__(
        self,
        store: Store,
        trust: TrustStore,
        clock: Clock = utc_now,
        heartbeat_interval: timedelta = timedelta(seconds=60),
    ) -> None:
        self._store = store
        self._trust = trust
        self._clock = clock
        self._interval = heartbeat_interval
        self._lock = asyncio.Lock()
        self._registry: Registry | None = None
        self._sessions: SessionTable | None = None

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open storage and load the state; the first start begins the evaluation."""
        now = self._clock()
        stored = await self._store.open(now)
        self._registry = Registry.build(
            stored.installation, [self._verify(lic) for lic in stored.licenses], stored.users
        )
        self._sessions = SessionTable(stored.session_secret, self._interval)
        if stored.created:
            log.info("new installation %s", stored.installation.installation_id)

    async def close(self) -> None:
        """Close storage."""
        await self._store.close()

    def _verify(self, stored: StoredLicense) -> InstalledLicense:
        """Re-verify a stored key: a key edited in the database or no longer trusted stops
        counting, with the reason shown in the status."""
        try:
            key, _ = read_key(stored.key_text, self._trust)
        except KeyRejected as exc:
            log.warning("installed license %s does not verify: %s", stored.license_id, exc)
            return InstalledLicense(
                stored.license_id, stored.key_text, stored.installed_at, None, exc.message
            )
        if key.license_id != stored.license_id:
            return InstalledLicense(
                stored.license_id,
                stored.key_text,
                stored.installed_at,
                None,
                "the stored key belongs to another license id",
            )
        return InstalledLicense(stored.license_id, stored.key_text, stored.installed_at, key)

    @property
    def registry(self) -> Registry:
        """The current state."""
        if self._registry is None:
            raise StorageError("The license service has not started.", reason="NOT_STARTED")
        return self._registry

    @property
    def sessions(self) -> SessionTable:
        """The live client sessions."""
        if self._sessions is None:
            raise StorageError("The license service has not started.", reason="NOT_STARTED")
        return self._sessions

    @property
    def heartbeat_interval(self) -> timedelta:
        """How often 5.x and later clients heartbeat."""
        return self._interval

    def now(self) -> datetime:
        """The service's clock."""
        return self._clock()

    # --- clients --------------------------------------------------------------------------

    def login(self, user_name: str, release: Release) -> LoginOutcome:
        """Decide a login; open a session when granted and the client keeps one."""
        now = self._clock()
        decision = licensing.decide_login(self.registry, user_name, now)
        if decision.granted and release.has_sessions:
            key = name_key(decision.user_name)
            return LoginOutcome(decision, self.sessions.open(key, now, int(release)))
        return LoginOutcome(decision)

    def heartbeat(self, session_id: str) -> tuple[Decision, Release]:
        """Keep a session alive while its user still holds a seat; also the session's
        client release (the oldest with sessions when the session is unknown)."""
        now = self._clock()
        session = self.sessions.touch(session_id, now)
        if session is None:
            ended = Decision(
                False,
                Deny.SESSION_ENDED,
                "Your OfficeStatus session has ended. Sign in again.",
            )
            return ended, _session_release(self.sessions.release_of(session_id))
        release = _session_release(session.release)
        user = self.registry.users.get(session.user_key)
        if user is None:
            decision = Decision(
                False,
                Deny.USER_UNKNOWN,
                "Your user is no longer known to the OfficeStatus License Server. Ask your "
                "administrator.",
            )
        else:
            decision = licensing.standing(self.registry, user, now)
        if not decision.granted:
            self.sessions.close(session_id)
        return decision, release

    def logout(self, session_id: str) -> bool:
        """End a session; whether it was live."""
        return self.sessions.close(session_id)

    # --- admin ----------------------------------------------------------------------------

    async def _change(self, plan: Callable[[Registry, datetime], Change]) -> Change:
        """Plan, commit and apply one change: the check and the write are one unit."""
        async with self._lock:
            now = self._clock()
            change = plan(self.registry, now)
            await self._store.commit(change)
            self._registry = self.registry.apply(change)
        log.info("%s %s: %s", change.audit.action, change.audit.subject, change.audit.result)
        return change

    async def install_license(self, key_text: str) -> InstalledLicense:
        """Verify and install a license key."""
        try:
            key, compact = read_key(key_text, self._trust)
            change = await self._change(lambda r, now: licensing.plan_install(r, key, compact, now))
        except LicenseServerError as exc:
            log.warning("license install refused: %s (%s)", exc.message, exc.reason)
            raise
        return change.add_licenses[0]

    async def remove_license(self, license_id: str, force: bool) -> InstalledLicense:
        """Remove a license (forced: even when users end up over capacity)."""
        removed = self.registry.license(license_id)
        await self._change(lambda r, now: licensing.plan_remove(r, license_id, force, now))
        assert removed is not None  # plan_remove refused otherwise
        return removed

    async def add_users(self, names: list[str], enable: bool) -> list[User]:
        """Add users, enabled at once if asked."""
        change = await self._change(lambda r, now: licensing.plan_add_users(r, names, enable, now))
        return self._touched(change)

    async def enable_users(self, names: list[str]) -> list[User]:
        """Enable users: all or none, seats permitting."""
        change = await self._change(lambda r, now: licensing.plan_enable(r, names, now))
        return self._touched(change)

    async def disable_users(self, names: list[str]) -> list[User]:
        """Disable users: their seats are free at once."""
        change = await self._change(lambda r, now: licensing.plan_disable(r, names, now))
        return self._touched(change)

    def _touched(self, change: Change) -> list[User]:
        return [self.registry.users[name_key(n)] for n in change.touched]

    def users(self) -> list[User]:
        """All users, by name."""
        return sorted(self.registry.users.values(), key=lambda u: name_key(u.name))

    def licenses(self) -> list[InstalledLicense]:
        """All installed licenses, in install order."""
        return list(self.registry.licenses)

    def status(self) -> StatusView:
        """The explained licensing state."""
        return status_view(self.registry, self._clock())

    async def audit(self, limit: int) -> list[AuditEntry]:
        """The newest audit entries, newest first."""
        return await self._store.audit(limit)
