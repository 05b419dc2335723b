"""The takeover's report as the admin meets it: in the status until marked seen, whole
(a page at a time) from GetTakeoverReport and `officestatus-admin takeover-report`.

Real takeovers of 5.x databases built from the legacy schemas, by the in-process server
on real gRPC and SQLite."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from officestatus.admin import admin_service_pb2 as admin_pb
from officestatus.admin import admin_service_pb2_grpc as admin_grpc
from officestatus_client import AdminClient, InvalidArgumentError
from officestatus_server.core.keys import public_key_text
from officestatus_server.core.model import Change
from officestatus_server.core.takeover import TookOver, plan_report_seen
from tests.legacy_servers import LegacyInstallation, LegacyUser, LegacyVendor, flip_one_byte
from tests.support import START, FakeClock, RunningServer, Vendor, admin_cli, free_port

SEEN_COMMAND = "officestatus-admin takeover-report --seen"


def _old_installation(vendor: LegacyVendor, extra_users: int = 0) -> LegacyInstallation:
    """A 5.x installation whose takeover merges one name and leaves out a key."""
    return LegacyInstallation(
        release=5,
        port=free_port(),
        listen_host="127.0.0.1",
        heartbeat_seconds=30,
        users=[
            LegacyUser("anna", enabled_at="2022-01-01 10:00:00"),
            LegacyUser("ANNA ", enabled=False),
            LegacyUser("bob", enabled=False),
            *(LegacyUser(f"user{i:03d}", enabled=False) for i in range(extra_users)),
        ],
        licenses=[
            vendor.key("L5-1", major=5, seats=10),
            flip_one_byte(vendor.key("L5-2", major=5, seats=99)),
        ],
        audit=[("2022-01-01 10:00:00", "DOM\\admin", "user.add", "anna")],
    )


LEGACY = LegacyVendor()


def _server(tmp_path: Path, old: LegacyInstallation | None) -> RunningServer:
    """A server whose first start takes over `old` (none: a new installation), trusting
    the keys of LEGACY."""
    server = RunningServer(tmp_path / "data", Vendor(), FakeClock())
    if old is not None:
        legacy = LEGACY
        old.write(tmp_path / "old")
        keys = server.data_dir / "vendor-keys"
        keys.mkdir()
        public = Ed25519PublicKey.from_public_bytes(legacy.public_raw())
        (keys / "kms-legacy.pub").write_text(public_key_text(legacy.kid, public))
        server.config = dataclasses.replace(server.config, upgrade_from=tmp_path / "old")
    return server


@pytest.fixture
async def taken_over(tmp_path: Path) -> AsyncIterator[RunningServer]:
    server = await _server(tmp_path, _old_installation(LEGACY, extra_users=3)).start()
    try:
        yield server
    finally:
        await server.stop()


MERGED = "user 'anna': merged ('ANNA ' is the same account on 6.x; enabled)"


async def test_the_status_shows_the_takeover_until_marked_seen_which_is_audited_once(
    taken_over: RunningServer,
) -> None:
    async with AdminClient(taken_over.address, taken_over.token) as admin:
        section = (await admin.status()).takeover
        assert section is not None
        assert section.release == 5
        assert section.summary.startswith("took over the 5.x installation")
        report = await admin.takeover_report()
        assert report is not None
        assert section.report_lines == len(report.lines)
        # The lines to look at: the merge and the key left out, not the plain users.
        assert section.attention[0] == MERGED
        assert section.attention[1].startswith("license OSK-")
        assert ": left out (" in section.attention[1]
        assert len(section.attention) == 2
        assert section.attention_more == 0
        assert not any("user 'bob'" in line for line in section.attention)

    await taken_over.restart()  # the section, as it was, until marked seen
    async with AdminClient(taken_over.address, taken_over.token) as admin:
        assert (await admin.status()).takeover == section
        took_over, status = await admin.mark_takeover_report_seen()
        assert took_over
        assert status.takeover is None
        again, _ = await admin.mark_takeover_report_seen()  # idempotent
        assert again
        assert (await admin.status()).takeover is None
        audit = await admin.audit()
        seen = [a for a in audit if a.action == "takeover.report-seen"]
        assert len(seen) == 1
        assert seen[0].result == f"marked seen ({len(report.lines)} lines)"
        assert audit[0].action == "takeover.report-seen"
        assert (await admin.verify_audit()).intact
        after = await admin.takeover_report()
        assert after is not None
        assert after.seen
        assert after.lines == report.lines

    await taken_over.restart()
    async with AdminClient(taken_over.address, taken_over.token) as admin:
        assert (await admin.status()).takeover is None
        kept = await admin.takeover_report()
        assert kept is not None
        assert kept.seen
        assert kept.lines == report.lines


async def test_the_takeover_is_in_the_log_and_the_audit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="officestatus.service")
    server = await _server(tmp_path, _old_installation(LEGACY)).start()
    try:
        async with AdminClient(server.address, server.token) as admin:
            report = await admin.takeover_report()
            audit = await admin.audit()
    finally:
        await server.stop()
    assert report is not None
    logged = caplog.messages
    assert report.summary in logged
    for line in report.lines:
        assert f"takeover: {line}" in logged
    assert audit[0].action == "takeover"
    # The audit record: the summary, the lines that need a look, and the report's digest,
    # so the report printed later can be checked against the audit chain.
    whole = "".join(f"{line}\n" for line in report.lines).encode()
    assert audit[0].result.startswith(report.summary + "; needs a look: ")
    assert MERGED in audit[0].result
    assert audit[0].result.endswith(
        f"; the report: {len(report.lines)} lines, sha256 {hashlib.sha256(whole).hexdigest()}"
    )


async def test_the_report_comes_in_pages_the_server_caps(tmp_path: Path) -> None:
    server = await _server(tmp_path, _old_installation(LEGACY, extra_users=1200)).start()
    try:
        async with AdminClient(server.address, server.token) as admin:
            first = await admin.takeover_report_page(0, 0)
            assert first.took_over
            assert first.total > 1000
            assert len(first.lines) == 1000  # 0 is a page
            capped = await admin.takeover_report_page(0, 5000)
            assert len(capped.lines) == 1000  # more than a page is a page
            small = [await admin.takeover_report_page(i, 7) for i in range(0, first.total, 7)]
            assert all(len(p.lines) == 7 for p in small[:-1])
            paged = tuple(line for p in small for line in p.lines)
            whole = await admin.takeover_report(page_size=7)
            assert whole is not None
            assert paged == whole.lines
            assert len(whole.lines) == first.total
            assert whole.lines[:1000] == first.lines
            assert (await admin.takeover_report()) == whole
            beyond = await admin.takeover_report_page(first.total + 5, 10)
            assert (beyond.total, beyond.lines) == (first.total, ())
            # The status carries the section, never the whole report.
            status = await admin.status()
            assert status.takeover is not None
            assert status.takeover.report_lines == first.total
            with pytest.raises(InvalidArgumentError):
                await admin.takeover_report_page(-1, 10)
    finally:
        await server.stop()


async def test_the_status_shows_at_most_fifty_lines_and_counts_the_rest(tmp_path: Path) -> None:
    old = _old_installation(LEGACY)
    # Sixty names 6.x refuses (a control character): each one is left out, with why.
    old.users += [LegacyUser(f"bad\x07{i:02d}") for i in range(60)]
    server = await _server(tmp_path, old).start()
    try:
        async with AdminClient(server.address, server.token) as admin:
            section = (await admin.status()).takeover
            report = await admin.takeover_report()
    finally:
        await server.stop()
    assert section is not None
    assert report is not None
    assert len(section.attention) == 50
    # merged anna, the key and sixty names: 62 to look at.
    assert section.attention_more == 12
    assert sum(": left out (" in line or ": merged (" in line for line in report.lines) == 62


async def test_without_a_takeover_there_is_no_report(tmp_path: Path) -> None:
    server = await _server(tmp_path, None).start()
    try:
        async with AdminClient(server.address, server.token) as admin:
            assert (await admin.status()).takeover is None
            assert await admin.takeover_report() is None
            took_over, _ = await admin.mark_takeover_report_seen()
            assert not took_over
            assert [a.action for a in await admin.audit()] == []
        code, out, err = await admin_cli(server, "takeover-report", "--seen")
        assert (code, err) == (0, "")
        assert out == "No takeover: this installation was not made from an older server's.\n"
        code, out, _ = await admin_cli(server, "--json", "takeover-report")
        assert code == 0
        document = json.loads(out)
        assert (document.pop("format"), document.pop("version")) == ("officestatus-admin", 1)
        assert document == {"took_over": False}
        code, out, _ = await admin_cli(server, "status")
        assert code == 0
        assert "Takeover" not in out
    finally:
        await server.stop()


async def test_the_cli_shows_the_section_prints_the_report_and_marks_it_seen(
    taken_over: RunningServer,
) -> None:
    code, out, err = await admin_cli(taken_over, "status")
    assert (code, err) == (0, "")
    section = out[out.index("Takeover: took over the 5.x installation") :].splitlines()
    assert section[1].startswith("  The report has ")
    assert section[1].endswith(" lines (officestatus-admin takeover-report).")
    assert section[2] == "  To look at (merged or left out):"
    assert section[3] == f"    {MERGED}"
    assert section[4].startswith("    license OSK-")
    assert section[-1] == f"  When you have read it, run: {SEEN_COMMAND}"
    assert "user 'bob'" not in out

    code, out, _ = await admin_cli(taken_over, "--json", "status")
    assert code == 0
    assert json.loads(out)["takeover"]["attention"][0] == MERGED

    code, out, _ = await admin_cli(taken_over, "takeover-report")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("took over the 5.x installation")
    assert "installation 6f1c1e0a-3b7e-4c55-9a57-2c1d8f0e4b21: taken over (the id is kept)" in lines
    assert "user 'bob': taken over (disabled)" in lines
    assert "user 'user002': taken over (disabled)" in lines
    assert MERGED in lines
    assert lines[-1] == f"The status shows it until you run: {SEEN_COMMAND}"
    # The digest of what was printed is the one the audit record names.
    assert lines[-2].startswith("sha256 ")
    digest = lines[-2].split()[1]
    code, audit_out, _ = await admin_cli(taken_over, "--json", "audit")
    assert code == 0
    assert f"sha256 {digest}" in audit_out
    code, out, _ = await admin_cli(taken_over, "status")
    assert "Takeover:" in out  # reading it is not marking it

    code, out, _ = await admin_cli(taken_over, "--json", "takeover-report", "--seen")
    assert code == 0
    data = json.loads(out)
    assert data["took_over"] is True
    assert data["seen"] is True
    assert data["release"] == 5
    assert MERGED in data["lines"]
    assert data["sha256"] == digest
    code, out, _ = await admin_cli(taken_over, "status")
    assert code == 0
    assert "Takeover:" not in out
    code, out, _ = await admin_cli(taken_over, "takeover-report")
    assert code == 0
    assert out.splitlines()[-1] == "The report is marked seen: the status no longer shows it."


async def test_the_report_page_limit_is_the_servers(taken_over: RunningServer) -> None:
    """The wire: a limit beyond a page is served as a page, a negative one refused."""
    async with grpc.aio.insecure_channel(taken_over.address) as channel:
        stub = admin_grpc.AdminServiceStub(channel)
        metadata = (("authorization", f"Bearer {taken_over.token}"),)
        reply = await stub.GetTakeoverReport(
            admin_pb.GetTakeoverReportRequest(offset=1, limit=2), metadata=metadata
        )
        assert reply.took_over
        assert reply.offset == 1
        assert len(reply.lines) == 2
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetTakeoverReport(
                admin_pb.GetTakeoverReportRequest(limit=-1), metadata=metadata
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_marking_the_report_seen_is_planned_once() -> None:
    took_over = TookOver(5, "took over", "0.0.0.0:50051", 30, ("a", "b", "c"), attention=(1,))
    change = plan_report_seen(took_over, START)
    assert change.takeover_report_seen
    assert change.audit is not None
    assert (change.audit.action, change.audit.result) == (
        "takeover.report-seen",
        "marked seen (3 lines)",
    )
    assert plan_report_seen(dataclasses.replace(took_over, seen=True), START) == Change(audit=None)
    assert plan_report_seen(None, START) == Change(audit=None)
    assert took_over.needs_attention() == (("b",), 0)
    assert took_over.needs_attention(limit=0) == ((), 1)
    assert took_over.page(1, 5) == ("b", "c")
