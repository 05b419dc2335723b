"""The license service: the core's rules applied to the stored state, one change at a time.

It keeps the whole registry in memory, consistent with storage: an admin change is
planned by the core under one lock, committed in one transaction, and only then applied
to memory. Logins and heartbeats read memory only, never the database.

Several servers may share one database (`Store.shared`). Each change is then planned
under the database's installation lock, after this server caught up with what the
others wrote (each change is numbered: a number other than the last one seen here
means the state is read again). Between changes, `Store.follow` tells of the others'
changes as they happen, and the server catches up by itself; logouts travel the same
way. While the database is unreachable, logins go on from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

from officestatus_server.core import plans, user_plans
from officestatus_server.core.alerts import (
    DEFAULT_SEAT_THRESHOLDS,
    Alert,
    alert_state,
    check_alerts,
    kinds,
)
from officestatus_server.core.audit import ChainedRecord, ChainReport
from officestatus_server.core.evaluation import clock_set_back_change, watch_clock
from officestatus_server.core.keys import TrustedKey, TrustStore
from officestatus_server.core.legacy_keys import read_any_key
from officestatus_server.core.login import Decision, DecisionCache, Rule, answer
from officestatus_server.core.model import Change, ClockSetBack, InstalledLicense, User
from officestatus_server.core.names import name_key
from officestatus_server.core.registry import Registry, keyed_users
from officestatus_server.core.sessions import (
    DEFAULT_MAX_PER_USER,
    DEFAULT_MAX_TOTAL,
    Ended,
    Seen,
    Session,
    SessionFlush,
    SessionTable,
)
from officestatus_server.core.signed_in import (
    DEFAULT_MAX_LAST_LOGINS,
    MAX_CLIENT_VERSION,
    MAX_MACHINE_NAME,
    LastLogin,
    LastLoginFlush,
    LastLogins,
    SignedIn,
    clip,
    listing_page,
    plan_end_sessions,
)
from officestatus_server.core.status import StatusView, status_view
from officestatus_server.core.takeover import Takeover, TookOver, plan_report_seen
from officestatus_server.core.tally import ChangeResult, ChangeTally, LoginTally
from officestatus_server.core.upgrade import Preview, preview_upgrade
from officestatus_server.core.usage import (
    KEEP,
    MAX_REPORT_DAYS,
    REPORT_DAYS,
    UsageHour,
    UsageRecorder,
    UsageReport,
    merge_hours,
    next_flush_in,
    report,
    report_start,
)
from officestatus_server.core.user_plans import ImportedUser
from officestatus_server.core.versions import NEWEST_RELEASE, Release
from officestatus_server.errors import (
    InvalidInput,
    KeyRejected,
    LicenseServerError,
    NotFound,
    NotStarted,
    StorageError,
)
from officestatus_server.storage.base import (
    Delta,
    Heard,
    Store,
    Stored,
    StoredLicense,
    Transaction,
)

log = logging.getLogger("officestatus.service")
# Every login and heartbeat answer: refusals at info, grants at debug. Each call site
# asks isEnabledFor first, so with the level above them a login builds no record.
login_log = logging.getLogger("officestatus.logins")
# The seat and evaluation alerts: one warning when one comes into force.
alert_log = logging.getLogger("officestatus.alerts")
# Threads that verify the installed licenses' signatures at start.
_VERIFY_THREADS = min(4, os.cpu_count() or 1)

Clock = Callable[[], datetime]
# Seconds on a clock that never jumps (time.monotonic): how long sessions have been idle.
Monotonic = Callable[[], float]
# How often the latest time seen is written down while the server runs.
HIGH_WATER_EVERY = timedelta(minutes=1)
# Shared database: how far back a start reads the sessions logged out at other servers,
# and how long a follower that failed waits before it listens again.
ENDED_LOOKBACK = timedelta(days=1)
# The installation values that hold the vendor keys of servers sharing a database.
VENDOR_KEY_PREFIX = "vendor_key:"
FOLLOW_RETRY_SECONDS = 1.0


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


class LoginOutcome(NamedTuple):
    """A login decision, with the session it opened (5.x and later, when granted)."""

    decision: Decision
    # When it was decided: the license state a 6.x client is shown is taken at this time.
    at: datetime
    session_id: str = ""


def _session_release(release: int | None) -> Release:
    """The release a session's replies are shaped for: the oldest with sessions when the
    session id is not genuine, else the release that opened it."""
    if release is None:
        return Release.V5
    return Release(min(max(release, Release.V5), NEWEST_RELEASE))


# The longest user name a log line shows.
_LOGGED_NAME = 128


def _log_answer(
    call: str, decision: Decision, user_name: str, release: Release, machine: str
) -> None:
    """One line for a login's or heartbeat's answer: refused at info (with the reason),
    granted at debug."""
    # Clipped as the sessions listing clips them: a client's name for itself or a refused
    # name can be long or hold control characters.
    fields = {
        "user": clip(decision.user_name or user_name, _LOGGED_NAME),
        "release": f"{int(release)}.x",
        "reason": "" if decision.granted else decision.reason.name,
        "machine": clip(machine, MAX_MACHINE_NAME),
    }
    said = f"{call} granted" if decision.granted else f"{call} refused ({fields['reason']})"
    login_log.log(
        logging.DEBUG if decision.granted else logging.INFO,
        "%s: user %r, %s client, machine %r: %s",
        said,
        fields["user"],
        fields["release"],
        fields["machine"],
        decision.message,
        extra=fields,
    )


_P = ParamSpec("_P")
_T = TypeVar("_T")
_AdminMethod = Callable[Concatenate["LicenseService", _P], Coroutine[Any, Any, _T]]


# What the audit record of a change made on the status page says of where it was made.
BROWSER = "made in the browser, on the status page"

# Every kind of admin change `admin_change` counts: the metrics list each one from the start.
ADMIN_CHANGE_KINDS: list[str] = []


def admin_change(kind: str) -> Callable[[_AdminMethod[_P, _T]], _AdminMethod[_P, _T]]:
    """An admin change method, counted in `service.changes` by `kind` (the audit's name
    for it) and how it ended: done, refused on purpose, or failed."""
    ADMIN_CHANGE_KINDS.append(kind)

    def decorate(method: _AdminMethod[_P, _T]) -> _AdminMethod[_P, _T]:
        async def counted(service: LicenseService, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
            result = ChangeResult.FAILED
            try:
                done = await method(service, *args, **kwargs)
                result = ChangeResult.DONE
                return done
            except StorageError:
                raise
            except LicenseServerError:
                result = ChangeResult.REFUSED
                raise
            finally:
                service.changes.count(kind, result)

        return functools.update_wrapper(counted, method)

    return decorate


class LicenseService:
    """Licenses, users and sessions of one installation."""

    def __init__(
        self,
        store: Store,
        trust: TrustStore,
        clock: Clock = utc_now,
        heartbeat_interval: timedelta = timedelta(seconds=60),
        *,
        monotonic: Monotonic = time.monotonic,
        max_sessions_per_user: int = DEFAULT_MAX_PER_USER,
        max_sessions: int = DEFAULT_MAX_TOTAL,
        heartbeat_configured: bool = True,
        max_last_logins: int = DEFAULT_MAX_LAST_LOGINS,
        reload_trust: Callable[[], TrustStore] | None = None,
        usage_flush_seconds: float = 60,
        usage_keep: timedelta = KEEP,
        seat_alert_percent: Sequence[int] = DEFAULT_SEAT_THRESHOLDS,
    ) -> None:
        self._store = store
        self._trust = trust
        # The keys this server was given (files); with a shared database, `_trust` adds
        # those the other servers were given.
        self._local_trust = trust
        # Reads the trusted keys' files again (None: the keys given are all there is).
        self._reload_trust = reload_trust
        self._clock = clock
        # The wall clock serves the evaluation, support and the audit; the monotonic one
        # the sessions' liveness.
        self._monotonic = monotonic
        self._max_per_user = max_sessions_per_user
        self._max_sessions = max_sessions
        self._interval = heartbeat_interval
        # Unless configured, the heartbeat of the 5.x server this one took over is kept.
        self._heartbeat_configured = heartbeat_configured
        self.took_over: TookOver | None = None
        self._lock = asyncio.Lock()
        self._registry: Registry | None = None
        # The number of the newest change in memory (Store: every change is numbered).
        self._number = 0
        self._follower: asyncio.Task[None] | None = None
        self._high_water = datetime.min.replace(tzinfo=UTC)
        self._keeper: asyncio.Task[None] | None = None
        # Work that must finish even if whoever asked for it has gone.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sessions: SessionTable | None = None
        # The last logins of 3.x and 4.x clients, which hold no session.
        self._max_last_logins = max_last_logins
        self._last_logins = LastLogins(bound=max_last_logins)
        # Every login decided, counted for the metrics and the usage history; every
        # admin change, for the metrics.
        self.tally = LoginTally()
        self.changes = ChangeTally()
        # Granted logins already decided, for users who sign in again.
        self._decisions = DecisionCache()
        # The usage history: sampled and flushed every `usage_flush_seconds` (0: off),
        # hours older than `usage_keep` deleted at a flush.
        self.usage_flush_seconds = usage_flush_seconds
        self._usage_keep = usage_keep
        self._usage = UsageRecorder()
        # A flush's batch is in neither memory nor the database while it is written:
        # a reader of the history waits for it.
        self._usage_lock = asyncio.Lock()
        self._usage_keeper: asyncio.Task[None] | None = None
        # The alerts in force, by kind: checked where the state changes (admin changes,
        # the clock's minute), never on a login.
        self._seat_thresholds = tuple(seat_alert_percent)
        self._alerts: dict[str, Alert] = {}

    # --- life cycle ---------------------------------------------------------------------

    async def start(self, seed: Takeover | None = None) -> None:
        """Open storage and load the state; the first start begins the evaluation. A
        `seed` (the takeover of an older installation) fills a new installation."""
        now = self._clock()
        stored = await self._store.open(now, seed)
        if (
            stored.took_over is not None
            and stored.took_over.heartbeat_seconds is not None
            and not self._heartbeat_configured
        ):
            self._interval = timedelta(seconds=stored.took_over.heartbeat_seconds)
        await self._load(stored)
        # The clock is checked against the latest time any earlier run saw: setting it
        # back while the server is stopped shows too.
        self._high_water = stored.clock_high_water
        set_back = watch_clock(stored.installation, self._high_water, now)
        if set_back is not None:
            await self._commit_set_back(set_back)
        else:
            self._high_water = max(self._high_water, now)
            await self._store.commit(Change(audit=None, clock_high_water=self._high_water))
        sessions = SessionTable(
            stored.session_secret,
            self._interval.total_seconds(),
            started=self._monotonic(),
            earlier=await self._store.sessions(),
            max_per_user=self._max_per_user,
            max_total=self._max_sessions,
            shared=self._store.shared,
        )
        if self._store.shared:
            sessions.ended_elsewhere(await self._store.ended_sessions(now - ENDED_LOOKBACK))
        # This run is on record before it issues an id: a crash never orphans its ids.
        await self._store.save_sessions(sessions.take_flush())
        self._sessions = sessions
        self._last_logins = LastLogins(await self._store.last_logins(), self._max_last_logins)
        self._keeper = asyncio.get_running_loop().create_task(self._keep_high_water())
        if self._store.shared:
            self._follower = asyncio.get_running_loop().create_task(self._follow(now))
        if self.usage_flush_seconds > 0:
            self._observe_usage(now)
            self._usage_keeper = asyncio.get_running_loop().create_task(self._keep_usage())
        self._check_alerts()
        if stored.created and seed is not None:
            log.info("%s", seed.summary)
            for item in seed.items:
                log.info("takeover: %s", item.line())
        elif stored.created:
            log.info("new installation %s", stored.installation.installation_id)

    async def close(self) -> None:
        """Write down the latest time seen and the usage history, and close storage."""
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        if self._usage_keeper is not None:
            self._usage_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._usage_keeper
            self._usage_keeper = None
            await self.flush_usage()
        if self._registry is not None:
            with contextlib.suppress(LicenseServerError):
                await self._store.commit(Change(audit=None, clock_high_water=self._high_water))
        if self._sessions is not None:
            await self._save_sessions()
        await self._store.close()

    # --- the clock --------------------------------------------------------------------------

    def _now(self) -> datetime:
        """The clock, watched: a time further back than the latest seen (beyond the
        tolerance) ends the evaluation for good, at once in memory, durably soon after."""
        now = self._clock()
        if now > self._high_water:
            self._high_water = now
        elif self._registry is not None:
            set_back = watch_clock(self._registry.installation, self._high_water, now)
            if set_back is not None:
                change = clock_set_back_change(set_back)
                self._registry = self._registry.apply(change)
                self._background(self._commit_set_back(set_back))
        return now

    async def _commit_set_back(self, set_back: ClockSetBack) -> None:
        change = clock_set_back_change(set_back)
        async with self._lock, self._store.change() as tx:
            await self._catch_up_in(tx)
            number = await tx.write(change)
        self._registry = self.registry.apply(change)
        self._number = number
        log.warning("%s", change.audit.result if change.audit else "clock set back")
        self._check_alerts()

    # --- following the database (several servers) -------------------------------------

    async def _share_trust(self, trust: TrustStore, *, write: bool) -> TrustStore:
        """Shared database: the vendor keys of every server of the installation. This
        server's keys are written down (`write`: a key file put on one server is trusted
        by all), and every key written down is trusted here too."""
        for entry in trust.entries if write else ():
            await self._store.installation_value(VENDOR_KEY_PREFIX + entry.key_id, entry.text)
        stored = await self._store.installation_values(VENDOR_KEY_PREFIX)
        local = {entry.key_id for entry in trust.entries}
        files = [(e.source, e.data_dir_name, e.text) for e in trust.entries]
        files += [
            ("the shared database", None, text)
            for key_id, text in sorted(stored.items())
            if key_id[len(VENDOR_KEY_PREFIX) :] not in local
        ]
        return TrustStore.from_key_files(files)

    async def _load(self, stored: Stored) -> None:
        """Put the stored state in memory, the licenses verified again."""
        if self._store.shared:
            # Another server may have installed a license signed by a key it was given.
            self._trust = await self._share_trust(self._local_trust, write=self._registry is None)
        registry = Registry(
            stored.installation, *await self._verify_and_key(stored.licenses, stored.users)
        )
        self._registry = registry
        self._number = stored.change_number
        self.took_over = stored.took_over
        self._high_water = max(self._high_water, stored.clock_high_water)

    async def _catch_up_in(self, tx: Transaction) -> None:
        """Under the installation's lock: read what another server changed since memory
        was last in step (the users and licenses it changed; all, when the record of
        changes does not reach back)."""
        if tx.number != self._number:
            await self._read_changes(tx)

    async def _read_changes(self, source: Transaction | Store) -> None:
        """The changes since memory's number, from `source` (read everything when it
        has no delta that reaches back)."""
        delta = await source.delta(self._number)
        await self._reloaded(delta if delta is not None else await source.load())

    async def _reloaded(self, read: Delta | Stored) -> None:
        before = self._number
        if isinstance(read, Delta):
            await self._apply_delta(read)
            how = f"{len(read.users) + len(read.removed_user_keys)} users read again"
            if read.licenses is not None:
                how += ", and the licenses"
        else:
            await self._load(read)
            how = "everything read again"
        log.info(
            "caught up with changes %d to %d made through other servers (%s)",
            before + 1,
            self._number,
            how,
        )
        if self.usage_flush_seconds > 0:
            self._observe_usage(self._clock())
        self._check_alerts()

    async def _apply_delta(self, delta: Delta) -> None:
        """Bring memory up to `delta.number`: the users it names, as stored now; the
        licenses verified again only when one was installed or removed."""
        registry = self.registry
        gone = tuple(
            registry.users[key].name for key in delta.removed_user_keys if key in registry.users
        )
        after = registry.apply(Change(audit=None, remove_users=gone, put_users=delta.users))
        if delta.licenses is not None:
            if self._store.shared:
                self._trust = await self._share_trust(self._local_trust, write=False)
            verified, _ = await self._verify_and_key(delta.licenses, ())
            after = replace(after, installation=delta.installation, licenses=verified)
        elif delta.installation != after.installation:
            after = replace(after, installation=delta.installation)
        self._registry = after
        self._number = delta.number
        self.took_over = delta.took_over
        self._high_water = max(self._high_water, delta.clock_high_water)

    async def catch_up(self) -> bool:
        """Read what the database holds of changes memory has not seen; whether there
        were any."""
        async with self._lock:
            if await self._store.change_number() == self._number:
                return False
            await self._read_changes(self._store)
            return True

    async def _follow(self, started: datetime) -> None:
        """Hear the other servers' changes and logouts, and catch up (for ever: on an
        error, the follower waits a moment and listens again)."""
        since = started
        while True:
            try:
                async for heard in self._store.follow():
                    since = await self._heard(heard, since)
            except LicenseServerError as exc:
                log.warning("cannot follow the database: %s", exc.message)
            await asyncio.sleep(FOLLOW_RETRY_SECONDS)

    async def _heard(self, heard: Heard, since: datetime) -> datetime:
        """Apply what was heard; the time from which logouts were last read."""
        if heard.ended_sessions:
            self.sessions.ended_elsewhere(heard.ended_sessions)
        if heard.number is not None:
            if heard.number > self._number:
                await self.catch_up()
            return since
        # A poll or a reconnect: notices may have been missed.
        now = self._clock()
        self.sessions.ended_elsewhere(await self._store.ended_sessions(since))
        await self.catch_up()
        return now - timedelta(seconds=FOLLOW_RETRY_SECONDS)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """Forget a finished task, logging its error: it is added to work nobody awaits
        (a clock set-back written down in the background, a change whose caller had gone),
        so the log is the only place its error can go."""
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.info("a change finished after its caller had gone: %s", error)

    async def _keep_high_water(self) -> None:
        """Write the latest time seen down now and then, so a restart knows it."""
        while True:
            await asyncio.sleep(HIGH_WATER_EVERY.total_seconds())
            # The evaluation's days pass here: its alert is raised within the minute.
            self._check_alerts()
            try:
                await self._store.commit(Change(audit=None, clock_high_water=self._high_water))
            except LicenseServerError as exc:
                log.error("cannot record the clock's high-water mark: %s", exc.message)
            await self._save_sessions()
            try:
                await self._store.checkpoint()
            except LicenseServerError as exc:
                log.warning("%s", exc.message)

    # --- the usage history ----------------------------------------------------------------

    def _observe_usage(self, now: datetime) -> None:
        """Sample the enabled users, live sessions and seats into the current hour."""
        registry = self.registry
        seats = None if registry.evaluation(now).active else registry.seats
        live = self.sessions.live(self._monotonic()) if self._sessions is not None else 0
        self._usage.observe(now, registry.enabled_count(), live, seats)

    def _gather_usage(self) -> datetime:
        """Sample now and move the logins counted since the last time into the recorder."""
        now = self._now()
        self._observe_usage(now)
        self._usage.add_logins(now, self.tally.take_since_last())
        return now

    async def _keep_usage(self) -> None:
        while True:
            await asyncio.sleep(next_flush_in(self._clock(), self.usage_flush_seconds))
            await self.flush_usage()

    async def flush_usage(self) -> None:
        """Write the usage history gathered since the last flush (one durable commit),
        and delete the hours older than it keeps. A failed write stays in memory for the
        next flush."""
        if self.usage_flush_seconds <= 0 or self._registry is None:
            return
        async with self._usage_lock:
            now = self._gather_usage()
            hours = self._usage.take()
            try:
                await self._store.save_usage(hours, now - self._usage_keep)
            except LicenseServerError as exc:
                self._usage.put_back(hours)
                log.error("cannot write down the usage history: %s", exc.message)

    async def usage_hours(self, since: datetime) -> tuple[list[UsageHour], datetime]:
        """The usage history's hours from `since` on, those not yet written included, and
        the time they were read at."""
        async with self._usage_lock:
            stored = await self._store.usage(since)
            if self.usage_flush_seconds <= 0:
                return stored, self._now()
            now = self._gather_usage()
            pending = [h for h in self._usage.pending() if h.hour >= since]
        return merge_hours(stored, pending), now

    async def usage(self, days: int = 0) -> UsageReport:
        """The usage report of the last `days` UTC days (0: REPORT_DAYS), today included."""
        days = days or REPORT_DAYS
        if not 1 <= days <= MAX_REPORT_DAYS:
            raise InvalidInput(
                f"Ask for 1 to {MAX_REPORT_DAYS} days of usage (the history keeps two years), "
                f"not {days}.",
                reason="USAGE_DAYS_INVALID",
            )
        today = self._now().astimezone(UTC).date()
        since = datetime.combine(report_start(today, days), datetime.min.time(), UTC)
        hours, now = await self.usage_hours(since)
        return report(hours, now.astimezone(UTC).date(), days)

    async def _save_sessions(self) -> None:
        """Write down which sessions began and ended since the last time (a batch, off
        the logins' path): a restart resumes the live ones and no others."""
        sessions = self.sessions
        sessions.expire(self._monotonic())
        flush: SessionFlush = sessions.take_flush()
        try:
            await self._store.save_sessions(flush)
        except LicenseServerError as exc:
            sessions.flush_failed(flush)
            log.error("cannot write down the live sessions: %s", exc.message)
        logins: LastLoginFlush = self._last_logins.take_flush()
        try:
            await self._store.save_last_logins(logins)
        except LicenseServerError as exc:
            self._last_logins.flush_failed(logins)
            log.error("cannot write down the last logins: %s", exc.message)

    async def _verify_and_key(
        self, licenses: Sequence[StoredLicense], users: Iterable[User]
    ) -> tuple[tuple[InstalledLicense, ...], dict[str, User]]:
        """The stored licenses verified, and the users by name key. Verifying 1,000
        signatures is a good part of a start: it runs in threads (the signature check lets
        go of the GIL) while this thread keys the users."""
        size = max(1, -(-len(licenses) // _VERIFY_THREADS))
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(_VERIFY_THREADS, thread_name_prefix="verify")
        try:
            batches = [
                loop.run_in_executor(pool, self._verify_all, licenses[i : i + size])
                for i in range(0, len(licenses), size)
            ]
            keyed = keyed_users(users)
            verified = tuple(lic for batch in await asyncio.gather(*batches) for lic in batch)
        finally:
            # Never wait here: on a failure, the loop must not stall for the other batches.
            pool.shutdown(wait=False, cancel_futures=True)
        return verified, keyed

    def _verify_all(self, licenses: Sequence[StoredLicense]) -> list[InstalledLicense]:
        return [self._verify(lic) for lic in licenses]

    def _verify(self, stored: StoredLicense) -> InstalledLicense:
        """Re-verify a stored key: a key edited in the database or no longer trusted stops
        counting, with the reason shown in the status."""
        try:
            key, _ = read_any_key(stored.key_text, self._trust)
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
            raise NotStarted("The license service has not started yet; try again in a moment.")
        return self._registry

    @property
    def sessions(self) -> SessionTable:
        """The live client sessions."""
        if self._sessions is None:
            raise NotStarted("The license service has not started yet; try again in a moment.")
        return self._sessions

    @property
    def shared(self) -> bool:
        """Whether other servers share this server's database."""
        return self._store.shared

    async def installation_value(self, key: str, proposed: str) -> str:
        """A value of the whole installation: the one stored, else `proposed`, stored."""
        return await self._store.installation_value(key, proposed)

    @property
    def trust(self) -> TrustStore:
        """The vendor keys this server trusts."""
        return self._trust

    @property
    def heartbeat_interval(self) -> timedelta:
        """How often 5.x and later clients heartbeat."""
        return self._interval

    def now(self) -> datetime:
        """The service's clock (watched for being set back)."""
        return self._now()

    # --- clients --------------------------------------------------------------------------

    def login(
        self, user_name: str, release: Release, machine: str = "", version: str = ""
    ) -> LoginOutcome:
        """Decide a login; open a session when granted and the client keeps one, else
        keep it as the user's last login from that machine. `machine` and `version`: the
        machine name and client_version the client sent."""
        now = self._now()
        decision, key = self._decisions.decide(self.registry, user_name, now)
        self.tally.count(decision.reason, release)
        if not decision.granted:
            if login_log.isEnabledFor(logging.INFO):
                _log_answer("login", decision, user_name, release, machine)
            return LoginOutcome(decision, now)
        if login_log.isEnabledFor(logging.DEBUG):
            _log_answer("login", decision, user_name, release, machine)
        machine = clip(machine, MAX_MACHINE_NAME)
        version = clip(version, MAX_CLIENT_VERSION)
        if release.has_sessions:
            seen = Seen(machine, version, now.timestamp())
            opened = self.sessions.open(key, self._monotonic(), int(release), seen)
            return LoginOutcome(decision, now, opened)
        self._last_logins.record(
            LastLogin(key, decision.user_name, machine, version, int(release), now)
        )
        return LoginOutcome(decision, now)

    def heartbeat(self, session_id: str) -> tuple[Decision, Release]:
        """Keep a session alive while its user still holds a seat; also the session's
        client release (the oldest with sessions when the session is unknown)."""
        now = self._now()
        session = self.sessions.touch(session_id, self._monotonic())
        if session is None:
            ended = self._session_ended(session_id)
            return ended, _session_release(self.sessions.release_of(session_id))
        release = _session_release(session.release)
        registry = self.registry
        user = registry.users.get(session.user_key)
        decision = (
            answer(Rule.USER_REMOVED)
            if user is None
            else self._decisions.standing(registry, session.user_key, user, now)
        )
        if not decision.granted:
            self.sessions.close(session_id)
            if login_log.isEnabledFor(logging.INFO):
                name = user.name if user is not None else session.user_key
                _log_answer("heartbeat", decision, name, release, session.seen.machine)
        return decision, release

    def _session_ended(self, session_id: str) -> Decision:
        notice = self.sessions.ended_because(session_id)
        if notice is None:
            return answer(Rule.SESSION_ENDED)
        if notice.why is Ended.ADMIN:
            return answer(Rule.SESSION_ENDED_BY_ADMIN)
        if notice.why is Ended.USER_LIMIT:
            user = self.registry.users.get(notice.user_key)
            name = user.name if user is not None else notice.user_key
            return answer(
                Rule.SESSION_ENDED_USER_LIMIT, name=name, max_per_user=self.sessions.max_per_user
            )
        return answer(Rule.SESSION_ENDED_SERVER_LIMIT, max_total=self.sessions.max_total)

    def active_sessions(self) -> int:
        """How many sessions are live now."""
        return self.sessions.live(self._monotonic())

    def live_sessions_by_release(self) -> dict[Release, int]:
        """How many sessions are live now, by the client release that opened them."""
        live = self.sessions.live_by_release(self._monotonic())
        return {_session_release(release): n for release, n in live.items()}

    def logout(self, session_id: str) -> bool:
        """End a session; whether it was live. Other servers over the same database hear
        of it (written down in the background: never on the logout's path)."""
        live = self.sessions.close(session_id)
        if self._store.shared:
            self._background(self._store.end_sessions([session_id], self._clock()))
        return live

    def _user_key(self, user_name: str) -> str:
        """The key of a user that exists; NotFound names the user otherwise."""
        key = name_key(user_name)
        if key not in self.registry.users:
            raise NotFound(
                f"No user is named '{user_name}'. See officestatus-admin user list.",
                reason="USER_NOT_FOUND",
            )
        return key

    async def end_sessions(self, user_name: str) -> tuple[User, int]:
        """End a user's live sessions for an administrator (audited once, naming the user
        and how many): their 5.x and later clients hear why at their next heartbeat. The
        user (NotFound when there is none) and how many sessions were ended; none is no
        error, and writes no audit record."""
        key = self._user_key(user_name)
        # The sessions live when the admin asked are the ones ended, after their record
        # is written: one that logs in during the write signed in after the admin's call.
        ids = self.sessions.ids_of_user(key, self._monotonic())
        user = self.registry.users[key]
        if not ids:
            return user, 0
        await self._change(lambda r, now: plan_end_sessions(user, len(ids), now))
        self.sessions.end_for_admin(ids, self._monotonic())
        if self._store.shared:  # ended at the other servers too, as a logout is
            self._background(self._store.end_sessions(ids, self._clock()))
        return user, len(ids)

    def signed_in(self, user_name: str, offset: int, limit: int) -> tuple[list[SignedIn], int]:
        """Who is signed in: the live sessions and the last logins of clients without
        (of one user when `user_name` is given), a page from `offset`, and how many
        lines there are in all."""
        sessions = self.sessions
        users = self.registry.users
        monotonic_now = self._monotonic()
        if user_name:
            key = self._user_key(user_name)
            live: Iterable[Session] = sessions.of_user(key, monotonic_now)
            logins: Iterable[LastLogin] = self._last_logins.of_user(key)
        else:
            live = sessions.every(monotonic_now)
            logins = self._last_logins.every()

        def name_of(key: str) -> str | None:
            user = users.get(key)
            return user.name if user is not None else None

        return listing_page(live, logins, name_of, self._now(), monotonic_now, offset, limit)

    # --- admin ----------------------------------------------------------------------------

    async def _change(self, plan: Callable[[Registry, datetime], Change], via: str = "") -> Change:
        """Plan, commit and apply one change: the check and the write are one unit.
        `via` (e.g. `BROWSER`) is added to its audit record's result.

        The unit runs in a task of its own that the caller's cancellation (a client that
        times out or hangs up) cannot stop halfway: a change on disk but not in memory
        would be undone by the next change planned on the stale memory.
        """
        unit = asyncio.get_running_loop().create_task(self._plan_commit_apply(plan, via))
        self._tasks.add(unit)
        unit.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.shield(unit)
        except asyncio.CancelledError:
            # The caller has gone; the unit goes on, and its error, if any, is logged
            # when it ends. A caller still waiting hears the error itself: not logged here.
            unit.add_done_callback(self._finished)
            raise

    async def _plan_commit_apply(
        self, plan: Callable[[Registry, datetime], Change], via: str
    ) -> Change:
        async with self._lock:
            async with self._store.change() as tx:
                # Planned on the state as stored: no other server's change comes between.
                await self._catch_up_in(tx)
                now = self._now()
                change = replace(plan(self.registry, now), clock_high_water=self._high_water)
                if via and change.audit is not None:
                    change = replace(
                        change,
                        audit=replace(change.audit, result=f"{change.audit.result} ({via})"),
                    )
                number = await tx.write(change)
            self._registry = self.registry.apply(change)
            self._number = number
            if self.usage_flush_seconds > 0:
                # The enabled users' peak: a change may raise it between two samples.
                self._observe_usage(now)
        if change.audit is not None:
            entry = change.audit
            log.info("%s %s: %s", entry.action, entry.subject, entry.result)
        self._check_alerts()
        return change

    @admin_change("license.install")
    async def install_license(self, key_text: str, via: str = "") -> InstalledLicense:
        """Verify and install a license key (`via`: where the change was made, audited)."""
        try:
            try:
                key, compact = read_any_key(key_text, self._trust)
            except KeyRejected as exc:
                # A key file added since the start: read the files again, once, and retry.
                if exc.reason != "KEY_UNKNOWN_SIGNER" or not await self.reload_trust():
                    raise
                key, compact = read_any_key(key_text, self._trust)
            change = await self._change(
                lambda r, now: plans.plan_install(r, key, compact, now), via
            )
        except LicenseServerError as exc:
            log.warning("license install refused: %s (%s)", exc.message, exc.reason)
            raise
        return change.add_licenses[0]

    @admin_change("license.remove")
    async def remove_license(self, license_id: str, force: bool) -> InstalledLicense:
        """Remove a license (forced: even when users end up over capacity)."""
        removed: list[InstalledLicense] = []

        def plan(registry: Registry, now: datetime) -> Change:
            change = plans.plan_remove(registry, license_id, force, now)
            # Read under the change lock, from the registry the removal is planned on.
            removed.extend(lic for lic in registry.licenses if lic.license_id == license_id)
            return change

        await self._change(plan)
        return removed[0]

    @admin_change("users.add")
    async def add_users(self, names: list[str], enable: bool) -> list[User]:
        """Add users, enabled at once if asked."""
        change = await self._change(lambda r, now: plans.plan_add_users(r, names, enable, now))
        return self._touched(change)

    @admin_change("users.enable")
    async def enable_users(self, names: list[str], via: str = "") -> list[User]:
        """Enable users: all or none, seats permitting (`via`: where, audited)."""
        change = await self._change(lambda r, now: plans.plan_enable(r, names, now), via)
        return self._touched(change)

    @admin_change("users.disable")
    async def disable_users(self, names: list[str], via: str = "") -> list[User]:
        """Disable users: their seats are free at once (`via`: where, audited)."""
        change = await self._change(lambda r, now: plans.plan_disable(r, names, now), via)
        return self._touched(change)

    @admin_change("users.import")
    async def import_users(self, imported: list[ImportedUser]) -> list[User]:
        """Add users and enable those marked enabled, in one change (all or none)."""
        change = await self._change(lambda r, now: user_plans.plan_import_users(r, imported, now))
        return self._touched(change)

    @admin_change("users.remove")
    async def remove_users(self, names: list[str], force: bool) -> list[User]:
        """Remove users (all or none); an enabled one only when forced. Returns them as
        they were before."""
        removed: list[User] = []

        def plan(registry: Registry, now: datetime) -> Change:
            change = user_plans.plan_remove_users(registry, names, force, now)
            # Read under the change lock, from the registry the removal is planned on.
            removed.extend(registry.users[name_key(n)] for n in change.remove_users)
            return change

        await self._change(plan)
        return removed

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
        # The clock first: a set-back it finds changes the registry the view is made of,
        # as it does for the login that follows.
        now = self._now()
        return status_view(self.registry, now)

    # --- alerts -------------------------------------------------------------------------

    def _check_alerts(self) -> None:
        """Check the alerts against the state now: warn once of each that came into force,
        note each that cleared."""
        now = self._now()
        found = check_alerts(
            alert_state(self.registry, now), self._seat_thresholds, self._alerts, now
        )
        for kind in self._alerts.keys() - found.active.keys():
            alert_log.info("alert %s cleared", kind)
        self._alerts = dict(found.active)
        for alert in found.raised:
            alert_log.warning("%s", alert.message)

    def alerts(self) -> list[Alert]:
        """The seat and evaluation alerts in force now."""
        self._check_alerts()
        return list(self._alerts.values())

    def alert_kinds(self) -> list[str]:
        """Every kind of alert this server may raise (its seat thresholds, the evaluation)."""
        return kinds(self._seat_thresholds)

    def takeover_report(self) -> TookOver | None:
        """The report of the takeover this installation was made by; None without one."""
        return self.took_over

    @admin_change("takeover.report-seen")
    async def mark_takeover_report_seen(self) -> TookOver | None:
        """Record that the admin has seen the takeover's report (once, audited): the
        status shows it no more, the report stays readable. None without a takeover."""

        if self.took_over is None or self.took_over.seen:
            return self.took_over  # nothing to write
        # Planned under the change lock: two admins marking it at once audit it once.
        change = await self._change(lambda r, now: plan_report_seen(self.took_over, now))
        if change.takeover_report_seen and self.took_over is not None:
            self.took_over = replace(self.took_over, seen=True)
        return self.took_over

    async def audit(self, limit: int) -> list[ChainedRecord]:
        """The newest audit records, newest first."""
        return await self._store.audit(limit)

    async def verify_audit(self) -> ChainReport:
        """Check the audit log's hash chain."""
        return await self._store.verify_audit()

    def preview_upgrade(self, target_major: int) -> Preview:
        """What moving to another major release would do to the seats."""
        registry = self.registry
        target = target_major or registry.major + 1
        if target <= registry.major:
            raise InvalidInput(
                f"Preview a later major release than this server's {registry.major}.",
                reason="TARGET_MAJOR_INVALID",
            )
        return preview_upgrade(
            ((lic.license_id, lic.key) for lic in registry.licenses),
            registry.major,
            target,
            registry.seats,
            registry.enabled_count(),
        )

    async def reload_trust(self) -> bool:
        """Read the trusted vendor keys' files again; whether they now hold other keys
        (the installed licenses that did not verify are then verified again, and count
        if their signer is now trusted)."""
        if self._reload_trust is None:
            return False
        trust = await asyncio.to_thread(self._reload_trust)
        async with self._lock:
            self._local_trust = trust
            if self._store.shared:
                trust = await self._share_trust(trust, write=True)
            if trust.identities() == self._trust.identities():
                return False
            self._trust = trust
            registry = self.registry
            if any(lic.key is None for lic in registry.licenses):
                licenses = tuple(
                    self._verify(StoredLicense(lic.license_id, lic.key_text, lic.installed_at))
                    if lic.key is None
                    else lic
                    for lic in registry.licenses
                )
                self._registry = replace(registry, licenses=licenses)
        log.info("vendor keys read again: %d trusted", len(trust.entries))
        self._check_alerts()
        return True

    def trusted_keys(self) -> list[tuple[TrustedKey, list[str]]]:
        """The trusted vendor keys, each with the installed licenses it signed."""
        signed: dict[str, list[str]] = {}
        for lic in self.registry.licenses:
            if lic.key is not None:
                signed.setdefault(lic.key.signing_key_id, []).append(lic.license_id)
        return [(entry, signed.get(entry.key_id, [])) for entry in self._trust.entries]

    async def backup(self, target: Path) -> None:
        """A consistent copy of the database, taken while serving."""
        await self._store.backup(target)
        log.info("backup written")
