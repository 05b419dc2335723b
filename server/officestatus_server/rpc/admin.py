"""AdminService: licenses, users, status and audit, for the holder of the admin token."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from officestatus.admin import admin_service_pb2 as pb
from officestatus.admin import admin_service_pb2_grpc as pb_grpc
from officestatus_server.core.model import User
from officestatus_server.core.signed_in import PAGE
from officestatus_server.core.user_plans import ImportedUser
from officestatus_server.errors import InvalidInput
from officestatus_server.rpc import convert
from officestatus_server.rpc.errors import Context
from officestatus_server.rpc.signed_in import sessions_message
from officestatus_server.rpc.usage import usage_message
from officestatus_server.service import LicenseService

MAX_AUDIT = 10_000
# Lines of a takeover's report in one reply, at most: 100,000 users are 100 replies.
REPORT_PAGE = 1000
BACKUP_CHUNK = 1024 * 1024


class AdminServicer(pb_grpc.AdminServiceServicer):
    """The admin RPCs."""

    def __init__(self, service: LicenseService) -> None:
        self._service = service

    def _status(self) -> pb.Status:
        service = self._service
        return convert.status_message(
            service.status(),
            service.active_sessions(),
            service.takeover_report(),
            service.alerts(),
        )

    def _users(self, users: list[User]) -> list[pb.User]:
        service = self._service
        now = service.now()  # first: a clock set-back it finds changes the registry
        return convert.users_message(users, service.registry, now)

    async def InstallLicense(
        self, request: pb.InstallLicenseRequest, context: Context
    ) -> pb.InstallLicenseResponse:
        """Verify and install a license key."""
        lic = await self._service.install_license(request.key)
        return pb.InstallLicenseResponse(
            license=convert.license_message(lic, self._service.registry), status=self._status()
        )

    async def RemoveLicense(
        self, request: pb.RemoveLicenseRequest, context: Context
    ) -> pb.RemoveLicenseResponse:
        """Remove a license; refused if it leaves users over capacity, unless forced."""
        before = self._service.registry
        lic = await self._service.remove_license(request.license_id, request.force)
        return pb.RemoveLicenseResponse(
            license=convert.license_message(lic, before), status=self._status()
        )

    async def ListLicenses(
        self, request: pb.ListLicensesRequest, context: Context
    ) -> pb.ListLicensesResponse:
        """All installed licenses, counting or not."""
        registry = self._service.registry
        return pb.ListLicensesResponse(
            licenses=[convert.license_message(lic, registry) for lic in registry.licenses]
        )

    async def AddUsers(self, request: pb.AddUsersRequest, context: Context) -> pb.AddUsersResponse:
        """Add users, enabled at once if asked."""
        users = await self._service.add_users(list(request.user_names), request.enable)
        return pb.AddUsersResponse(users=self._users(users), status=self._status())

    async def EnableUsers(
        self, request: pb.EnableUsersRequest, context: Context
    ) -> pb.EnableUsersResponse:
        """Enable users, all or none."""
        users = await self._service.enable_users(list(request.user_names))
        return pb.EnableUsersResponse(users=self._users(users), status=self._status())

    async def DisableUsers(
        self, request: pb.DisableUsersRequest, context: Context
    ) -> pb.DisableUsersResponse:
        """Disable users; their seats are free at once."""
        users = await self._service.disable_users(list(request.user_names))
        return pb.DisableUsersResponse(users=self._users(users), status=self._status())

    async def ImportUsers(
        self, request: pb.ImportUsersRequest, context: Context
    ) -> pb.ImportUsersResponse:
        """Add users and enable those marked enabled, in one change."""
        imported = [ImportedUser(u.name, u.enabled) for u in request.users]
        users = await self._service.import_users(imported)
        return pb.ImportUsersResponse(users=self._users(users), status=self._status())

    async def RemoveUsers(
        self, request: pb.RemoveUsersRequest, context: Context
    ) -> pb.RemoveUsersResponse:
        """Remove users; enabled ones only when forced."""
        before = self._service.registry
        users = await self._service.remove_users(list(request.user_names), request.force)
        removed = convert.users_message(users, before, self._service.now())
        return pb.RemoveUsersResponse(users=removed, status=self._status())

    async def ListUsers(
        self, request: pb.ListUsersRequest, context: Context
    ) -> pb.ListUsersResponse:
        """All users, by name."""
        return pb.ListUsersResponse(users=self._users(self._service.users()))

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: Context
    ) -> pb.GetStatusResponse:
        """The licensing state, explained."""
        return pb.GetStatusResponse(status=self._status())

    async def ListAudit(
        self, request: pb.ListAuditRequest, context: Context
    ) -> pb.ListAuditResponse:
        """The newest audit records, newest first."""
        if not 0 <= request.limit <= MAX_AUDIT:
            raise InvalidInput(
                f"The audit limit must be between 1 and {MAX_AUDIT}.", reason="LIMIT_INVALID"
            )
        entries = await self._service.audit(request.limit or 100)
        return pb.ListAuditResponse(records=[convert.audit_message(e) for e in entries])

    async def VerifyAudit(
        self, request: pb.VerifyAuditRequest, context: Context
    ) -> pb.VerifyAuditResponse:
        """Check the audit log's hash chain."""
        report = await self._service.verify_audit()
        return pb.VerifyAuditResponse(
            intact=report.intact,
            records_checked=report.records_checked,
            problems=list(report.problems),
            head_hash=report.head_hash,
        )

    async def PreviewUpgrade(
        self, request: pb.PreviewUpgradeRequest, context: Context
    ) -> pb.PreviewUpgradeResponse:
        """What moving to another major release would do to the seats."""
        if not 0 <= request.target_major <= 99:
            raise InvalidInput("The target major version must be 1 to 99.", "TARGET_MAJOR_INVALID")
        return convert.preview_message(self._service.preview_upgrade(request.target_major))

    async def Backup(
        self, request: pb.BackupRequest, context: Context
    ) -> AsyncIterator[pb.BackupResponse]:
        """Stream a consistent copy of the database, taken while the server runs."""
        keys = [
            pb.VendorKeyFile(name=entry.data_dir_name, text=entry.text)
            for entry in self._service.trust.entries
            if entry.data_dir_name is not None
        ]
        if keys:
            yield pb.BackupResponse(vendor_keys=keys)
        with tempfile.TemporaryDirectory(prefix="officestatus-backup-") as folder:
            target = Path(folder) / "backup.db"
            await self._service.backup(target)
            with target.open("rb") as copy:
                while chunk := copy.read(BACKUP_CHUNK):
                    yield pb.BackupResponse(chunk=chunk)

    async def GetTakeoverReport(
        self, request: pb.GetTakeoverReportRequest, context: Context
    ) -> pb.GetTakeoverReportResponse:
        """A page of the takeover's report."""
        if request.offset < 0 or request.limit < 0:
            raise InvalidInput(
                "The report's offset and limit must not be negative.", reason="LIMIT_INVALID"
            )
        limit = min(request.limit or REPORT_PAGE, REPORT_PAGE)
        return convert.takeover_report_message(
            self._service.takeover_report(), request.offset, limit
        )

    async def MarkTakeoverReportSeen(
        self, request: pb.MarkTakeoverReportSeenRequest, context: Context
    ) -> pb.MarkTakeoverReportSeenResponse:
        """The admin has seen the takeover's report."""
        took_over = await self._service.mark_takeover_report_seen()
        return pb.MarkTakeoverReportSeenResponse(
            took_over=took_over is not None, status=self._status()
        )

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: Context
    ) -> pb.ListSessionsResponse:
        """A page of who is signed in: live sessions and the last logins of 3.x and 4.x."""
        if request.offset < 0 or request.limit < 0:
            raise InvalidInput(
                "The listing's offset and limit must not be negative.", reason="LIMIT_INVALID"
            )
        limit = min(request.limit or PAGE, PAGE)
        lines, total = self._service.signed_in(request.user_name, request.offset, limit)
        return sessions_message(lines, total, request.offset)

    async def EndSessions(
        self, request: pb.EndSessionsRequest, context: Context
    ) -> pb.EndSessionsResponse:
        """End a user's live sessions; their clients hear why at their next heartbeat."""
        user, ended = await self._service.end_sessions(request.user_name)
        return pb.EndSessionsResponse(user_name=user.name, ended=ended)

    async def ListTrustedKeys(
        self, request: pb.ListTrustedKeysRequest, context: Context
    ) -> pb.ListTrustedKeysResponse:
        """The trusted vendor keys, where each came from, and the licenses it signed."""
        return pb.ListTrustedKeysResponse(
            keys=[
                pb.TrustedKey(
                    key_id=entry.key_id,
                    fingerprint=entry.fingerprint,
                    source=entry.source,
                    data_dir_name=entry.data_dir_name or "",
                    license_ids=licenses,
                )
                for entry, licenses in self._service.trusted_keys()
            ]
        )

    async def GetUsage(self, request: pb.GetUsageRequest, context: Context) -> pb.GetUsageResponse:
        """The usage history's days, denials, busiest hour and forecast."""
        report = await self._service.usage(request.days)
        return usage_message(report, self._service.usage_flush_seconds)
