"""The two clients: SeatClient speaks the client protocol, AdminClient the admin protocol.

Each call goes through the transport (deadline, error conversion) and comes back as the
client's own dataclasses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

from officestatus.admin import admin_service_pb2 as admin_pb
from officestatus.admin import admin_service_pb2_grpc as admin_grpc
from officestatus.licensing import seat_service_pb2 as seat_pb
from officestatus.licensing import seat_service_pb2_grpc as seat_grpc
from officestatus.paths import DEFAULT_ADDRESS, token_path
from officestatus_client import _convert
from officestatus_client._errors import AuthenticationError
from officestatus_client._models import (
    AuditRecord,
    AuditVerification,
    BackupWritten,
    Handshake,
    HeartbeatResult,
    License,
    LicenseStatus,
    LoginResult,
    SessionsEnded,
    SessionsPage,
    SignedIn,
    Status,
    TakeoverReport,
    TakeoverReportPage,
    TlsConfig,
    TrustedKey,
    UpgradePreview,
    Usage,
    User,
)
from officestatus_client._transport import DEFAULT_TIMEOUT, Channel, Transport

CLIENT_VERSION = "6.0.0"


class _Client:
    """A transport, closed on `close()` or on leaving `async with`."""

    _transport: Transport

    @property
    def address(self) -> str:
        """The server address this client calls."""
        return self._transport.address

    async def close(self) -> None:
        """Close the channel, if this client opened it."""
        await self._transport.close()

    async def wait_until_ready(self, seconds: float) -> None:
        """Wait up to `seconds` for the server to accept connections."""
        await self._transport.wait_until_ready(seconds)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class SeatClient(_Client):
    """What an OfficeStatus client asks the license server (service SeatService).

    With `channel`, calls go over that grpc.aio channel and `close()` leaves it open;
    without, the client opens an insecure channel to `address` and closes it itself.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        client_version: str = CLIENT_VERSION,
        *,
        channel: Channel | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls: TlsConfig | None = None,
    ) -> None:
        self.client_version = client_version
        self._transport = Transport(address, channel, timeout=timeout, tls=tls)
        self._stub = seat_grpc.SeatServiceStub(self._transport.channel)

    async def handshake(self, capabilities: Iterable[str] = ()) -> Handshake:
        """What the server is, and which of `capabilities` it has on (all, if none named)."""
        request = seat_pb.HandshakeRequest(
            client_version=self.client_version, capabilities=list(capabilities)
        )
        reply = await self._transport.call(self._stub.Handshake, request, seat_pb.HandshakeReply)
        return _convert.handshake(reply)

    async def login(self, user_name: str, machine_name: str = "") -> LoginResult:
        """May `user_name` use OfficeStatus? A refusal is a result, not an exception."""
        request = seat_pb.LoginRequest(
            user_name=user_name, client_version=self.client_version, machine_name=machine_name
        )
        reply = await self._transport.call(self._stub.Login, request, seat_pb.LoginReply)
        return _convert.login(reply)

    async def license_status(self) -> LicenseStatus:
        """The license state, for the About box."""
        request = seat_pb.LicenseStatusRequest(client_version=self.client_version)
        reply = await self._transport.call(
            self._stub.GetLicenseStatus, request, seat_pb.LicenseStatusReply
        )
        return _convert.license_status(reply)

    async def heartbeat(self, session_id: str) -> HeartbeatResult:
        """Keep a session alive; `granted` is False once it no longer is."""
        request = seat_pb.HeartbeatRequest(session_id=session_id)
        reply = await self._transport.call(self._stub.Heartbeat, request, seat_pb.HeartbeatReply)
        return _convert.heartbeat(reply)

    async def logout(self, session_id: str) -> None:
        """End a session."""
        request = seat_pb.LogoutRequest(session_id=session_id)
        await self._transport.call(self._stub.Logout, request, seat_pb.LogoutReply)


class AdminClient(_Client):
    """Licenses, users, status and audit (service AdminService), with the admin token.

    Every call sends the token as "authorization: Bearer <token>". `local()` reads the
    token from the server's data directory on this machine.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        token: str = "",
        *,
        channel: Channel | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls: TlsConfig | None = None,
    ) -> None:
        token = token.strip()
        if not token:
            raise AuthenticationError(
                "no admin token was given; pass the token, or use AdminClient.local() on the "
                "server's machine to read it from the server's data directory",
                reason="ADMIN_TOKEN_MISSING",
            )
        # gRPC refuses metadata values outside printable ASCII, with an error that does
        # not say which value; say it here.
        if not (token.isascii() and token.isprintable()):
            raise AuthenticationError(
                "the admin token holds characters a token never has; check that it was "
                "copied whole and alone",
                reason="ADMIN_TOKEN_INVALID",
            )
        metadata = (("authorization", f"Bearer {token}"),)
        self._transport = Transport(address, channel, timeout=timeout, metadata=metadata, tls=tls)
        self._stub = admin_grpc.AdminServiceStub(self._transport.channel)

    @classmethod
    def local(
        cls,
        address: str = DEFAULT_ADDRESS,
        data_dir: Path | None = None,
        *,
        token_file: Path | None = None,
        channel: Channel | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        tls: TlsConfig | None = None,
    ) -> AdminClient:
        """A client with the token from `token_file`, else from the data directory's file."""
        path = token_file if token_file is not None else token_path(data_dir)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise AuthenticationError(
                f"there is no admin token file at {path}; run this on the server's machine "
                "as a user who can read the server's data directory, or name the file "
                "with --token-file or the directory with --data-dir",
                reason="ADMIN_TOKEN_FILE_MISSING",
            ) from None
        except (OSError, UnicodeDecodeError) as err:
            raise AuthenticationError(
                f"the admin token file {path} cannot be read ({err}); run this as a user "
                "who may read it",
                reason="ADMIN_TOKEN_FILE_UNREADABLE",
            ) from None
        if not token:
            raise AuthenticationError(
                f"the admin token file {path} is empty; restart the server to write a new one",
                reason="ADMIN_TOKEN_FILE_EMPTY",
            )
        return cls(address, token, channel=channel, timeout=timeout, tls=tls)

    # --- licenses ---------------------------------------------------------------------

    async def install_license(self, key_text: str) -> tuple[License, Status]:
        """Install a license key as the vendor sent it; armour lines and blanks are fine."""
        request = admin_pb.InstallLicenseRequest(key=key_text)
        reply = await self._transport.call(
            self._stub.InstallLicense, request, admin_pb.InstallLicenseResponse
        )
        return _convert.license_(reply.license), _convert.status(reply.status)

    async def remove_license(self, license_id: str, force: bool = False) -> tuple[License, Status]:
        """Remove a license; `force` even if more users would then be enabled than seats."""
        request = admin_pb.RemoveLicenseRequest(license_id=license_id, force=force)
        reply = await self._transport.call(
            self._stub.RemoveLicense, request, admin_pb.RemoveLicenseResponse
        )
        return _convert.license_(reply.license), _convert.status(reply.status)

    async def list_licenses(self) -> list[License]:
        """Every installed license, counting or not."""
        reply = await self._transport.call(
            self._stub.ListLicenses, admin_pb.ListLicensesRequest(), admin_pb.ListLicensesResponse
        )
        return [_convert.license_(lic) for lic in reply.licenses]

    # --- users ------------------------------------------------------------------------

    async def add_users(
        self, names: Iterable[str], enable: bool = False
    ) -> tuple[list[User], Status]:
        """Add users; with `enable`, enable them too (all or none, seats permitting)."""
        request = admin_pb.AddUsersRequest(user_names=_names(names), enable=enable)
        reply = await self._transport.call(self._stub.AddUsers, request, admin_pb.AddUsersResponse)
        return [_convert.user(u) for u in reply.users], _convert.status(reply.status)

    async def enable_users(self, names: Iterable[str]) -> tuple[list[User], Status]:
        """Enable users (all or none, seats permitting)."""
        request = admin_pb.EnableUsersRequest(user_names=_names(names))
        reply = await self._transport.call(
            self._stub.EnableUsers, request, admin_pb.EnableUsersResponse
        )
        return [_convert.user(u) for u in reply.users], _convert.status(reply.status)

    async def disable_users(self, names: Iterable[str]) -> tuple[list[User], Status]:
        """Disable users, freeing their seats."""
        request = admin_pb.DisableUsersRequest(user_names=_names(names))
        reply = await self._transport.call(
            self._stub.DisableUsers, request, admin_pb.DisableUsersResponse
        )
        return [_convert.user(u) for u in reply.users], _convert.status(reply.status)

    async def import_users(self, users: Iterable[tuple[str, bool]]) -> tuple[list[User], Status]:
        """Add users, each `(name, enabled)`, in one change: all or none, refused whole
        when the enabled ones do not fit the seats; they take seats in the order given."""
        request = admin_pb.ImportUsersRequest(
            users=[admin_pb.ImportedUser(name=name, enabled=enabled) for name, enabled in users]
        )
        reply = await self._transport.call(
            self._stub.ImportUsers, request, admin_pb.ImportUsersResponse
        )
        return [_convert.user(u) for u in reply.users], _convert.status(reply.status)

    async def remove_users(
        self, names: Iterable[str], force: bool = False
    ) -> tuple[list[User], Status]:
        """Remove users (all or none); `force` removes enabled ones too. Returns the
        removed users as they were."""
        request = admin_pb.RemoveUsersRequest(user_names=_names(names), force=force)
        reply = await self._transport.call(
            self._stub.RemoveUsers, request, admin_pb.RemoveUsersResponse
        )
        return [_convert.user(u) for u in reply.users], _convert.status(reply.status)

    async def list_users(self) -> list[User]:
        """Every user, enabled or not."""
        reply = await self._transport.call(
            self._stub.ListUsers, admin_pb.ListUsersRequest(), admin_pb.ListUsersResponse
        )
        return [_convert.user(u) for u in reply.users]

    # --- status and audit -------------------------------------------------------------

    async def status(self) -> Status:
        """The whole licensing state."""
        reply = await self._transport.call(
            self._stub.GetStatus, admin_pb.GetStatusRequest(), admin_pb.GetStatusResponse
        )
        return _convert.status(reply.status)

    async def takeover_report_page(self, offset: int = 0, limit: int = 0) -> TakeoverReportPage:
        """Lines of the takeover's report from `offset`: at most `limit` (0: a page, as
        many as the server gives at once)."""
        reply = await self._transport.call(
            self._stub.GetTakeoverReport,
            admin_pb.GetTakeoverReportRequest(offset=offset, limit=limit),
            admin_pb.GetTakeoverReportResponse,
        )
        return _convert.takeover_report_page(reply)

    async def takeover_report(self, page_size: int = 0) -> TakeoverReport | None:
        """The whole report of the takeover that made this installation, read a page at
        a time; None when no takeover made it."""
        page = await self.takeover_report_page(0, page_size)
        if not page.took_over:
            return None
        lines = list(page.lines)
        while page.lines and len(lines) < page.total:
            page = await self.takeover_report_page(len(lines), page_size)
            lines.extend(page.lines)
        return TakeoverReport(page.release, page.summary, page.seen, tuple(lines))

    async def mark_takeover_report_seen(self) -> tuple[bool, Status]:
        """Mark the takeover's report seen (the status then no longer shows it); False
        when no takeover made this installation."""
        reply = await self._transport.call(
            self._stub.MarkTakeoverReportSeen,
            admin_pb.MarkTakeoverReportSeenRequest(),
            admin_pb.MarkTakeoverReportSeenResponse,
        )
        return reply.took_over, _convert.status(reply.status)

    async def sessions_page(
        self, user_name: str = "", offset: int = 0, limit: int = 0
    ) -> SessionsPage:
        """Who is signed in (one user when `user_name` is given), from line `offset`: at
        most `limit` lines (0: a page, as many as the server gives at once)."""
        reply = await self._transport.call(
            self._stub.ListSessions,
            admin_pb.ListSessionsRequest(user_name=user_name, offset=offset, limit=limit),
            admin_pb.ListSessionsResponse,
        )
        return _convert.sessions_page(reply)

    async def sessions(self, user_name: str = "", page_size: int = 0) -> list[SignedIn]:
        """Every live session and last login (of one user when `user_name` is given),
        read a page at a time."""
        page = await self.sessions_page(user_name, 0, page_size)
        lines = list(page.sessions)
        while page.sessions and len(lines) < page.total:
            page = await self.sessions_page(user_name, len(lines), page_size)
            lines.extend(page.sessions)
        return lines

    async def end_sessions(self, user_name: str) -> SessionsEnded:
        """End a user's live sessions (audited): their clients are refused at their next
        heartbeat, told an administrator ended the session. NotFoundError: no such user."""
        reply = await self._transport.call(
            self._stub.EndSessions,
            admin_pb.EndSessionsRequest(user_name=user_name),
            admin_pb.EndSessionsResponse,
        )
        return SessionsEnded(reply.user_name, reply.ended)

    async def audit(self, limit: int = 100) -> list[AuditRecord]:
        """The last `limit` admin changes, newest first."""
        reply = await self._transport.call(
            self._stub.ListAudit, admin_pb.ListAuditRequest(limit=limit), admin_pb.ListAuditResponse
        )
        return [_convert.audit_record(r) for r in reply.records]

    async def preview_upgrade(self, target_major: int = 0) -> UpgradePreview:
        """What moving to another major release (0: the next) would do to the seats."""
        reply = await self._transport.call(
            self._stub.PreviewUpgrade,
            admin_pb.PreviewUpgradeRequest(target_major=target_major),
            admin_pb.PreviewUpgradeResponse,
        )
        return _convert.upgrade_preview(reply)

    async def verify_audit(self) -> AuditVerification:
        """Check the audit log's hash chain for edited, inserted or deleted records."""
        reply = await self._transport.call(
            self._stub.VerifyAudit, admin_pb.VerifyAuditRequest(), admin_pb.VerifyAuditResponse
        )
        return _convert.audit_verification(reply)

    async def trusted_keys(self) -> list[TrustedKey]:
        """The vendor public keys the server trusts, with the licenses each signed."""
        reply = await self._transport.call(
            self._stub.ListTrustedKeys,
            admin_pb.ListTrustedKeysRequest(),
            admin_pb.ListTrustedKeysResponse,
        )
        return [
            TrustedKey(
                k.key_id, k.fingerprint, k.source, k.data_dir_name or None, tuple(k.license_ids)
            )
            for k in reply.keys
        ]

    async def usage(self, days: int = 0) -> Usage:
        """The usage history of the last `days` UTC days, today included (0: 30): daily
        peaks against the seats, denials, the busiest hour, and the seats' forecast."""
        reply = await self._transport.call(
            self._stub.GetUsage, admin_pb.GetUsageRequest(days=days), admin_pb.GetUsageResponse
        )
        return _convert.usage(reply)

    async def backup(self, target: Path) -> int:
        """Write a consistent copy of the server's database to `target`, a new file that
        only its owner can read; returns its size. Taken while the server runs. The
        trusted vendor key files in the server's data directory go beside it (see
        `backup_with_keys`)."""
        return (await self.backup_with_keys(target)).size

    async def backup_with_keys(self, target: Path) -> BackupWritten:
        """As `backup`, with the trusted vendor key files of the server's data directory
        written into the new folder `<target>.vendor-keys/` (none: no folder)."""
        keys: list[tuple[str, str]] = []
        partial = target.with_name(target.name + ".partial")
        fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                chunks = self._transport.stream(
                    self._stub.Backup, admin_pb.BackupRequest(), admin_pb.BackupResponse
                )
                async for reply in chunks:
                    keys.extend((k.name, k.text) for k in reply.vendor_keys)
                    out.write(reply.chunk)
                    size += len(reply.chunk)
                out.flush()
                os.fsync(out.fileno())
            # Only a complete copy gets the name asked for.
            os.link(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return BackupWritten(size, _write_key_files(key_folder(target), keys))


def _names(names: Iterable[str]) -> list[str]:
    # A lone string is one name, not a sequence of one-letter names.
    return [names] if isinstance(names, str) else list(names)


def key_folder(backup: Path) -> Path:
    """Where a backup's vendor key files go: beside it, `<backup>.vendor-keys/`."""
    return backup.with_name(backup.name + ".vendor-keys")


def _write_key_files(folder: Path, keys: list[tuple[str, str]]) -> tuple[Path, ...]:
    if not keys:
        return ()
    folder.mkdir()
    written = []
    for name, text in keys:
        # Only the file's own name: a server's reply never writes outside the folder.
        path = folder / Path(name).name
        with path.open("x", encoding="utf-8") as out:
            out.write(text)
        written.append(path)
    return tuple(written)
