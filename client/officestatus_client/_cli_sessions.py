"""officestatus-admin sessions: who is signed in, and ending a user's sessions.

The commands and their text, apart from admin_cli.py: `add_commands` adds them to the
admin CLI's sub-commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from officestatus_client import _render
from officestatus_client._client import AdminClient
from officestatus_client._models import SessionsPage, SignedIn


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add `sessions` (and `sessions end`) to the admin CLI's commands."""
    sessions = commands.add_parser(
        "sessions",
        help="who is signed in: live sessions, and the last logins of 3.x and 4.x clients",
    )
    sessions.add_argument("--user", default="", metavar="NAME", help="only this user's")
    sessions.add_argument(
        "--offset", type=int, default=0, metavar="N", help="begin at line N (default 0)"
    )
    sessions.add_argument(
        "--limit",
        type=int,
        default=0,
        metavar="N",
        help="at most N lines (default and at most: one page of the server's, 1000)",
    )
    sessions.set_defaults(run=_sessions)


async def _sessions(args: argparse.Namespace, client: AdminClient) -> str:
    page = await client.sessions_page(args.user, args.offset, args.limit)
    if args.json:
        return _render.document(page)
    return sessions_text(page, args.user)


def _client(line: SignedIn) -> str:
    if line.client_version:
        return line.client_version
    return f"{line.client_release}.x"


def _heard(line: SignedIn) -> str:
    if line.session:
        return _render.when(line.last_heartbeat_at)
    return f"last login, {line.client_release}.x: no session"


def _count(n: int, noun: str, plural: str = "") -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def sessions_text(page: SessionsPage, user: str = "") -> str:
    """The listing as a table, with what it shows of how many."""
    lines: Sequence[SignedIn] = page.sessions
    if not lines:
        if page.total:
            return f"No lines from {page.offset:,}: there are {page.total:,}."
        who = f"{user} is not" if user else "Nobody is"
        return f"{who} signed in: no live session, no last login of a 3.x or 4.x client."
    live = sum(1 for line in lines if line.session)
    rows = [
        (
            line.user_name,
            line.machine_name or "unknown",
            _client(line),
            _render.when(line.signed_in_at),
            _heard(line),
        )
        for line in lines
    ]
    table = _render.table(("USER", "MACHINE", "CLIENT", "SIGNED IN", "LAST HEARTBEAT"), rows)
    out = [
        f"{_count(live, 'live session')}, {_count(len(lines) - live, 'last login')} of 3.x "
        "and 4.x clients (they hold no session: when each user last logged in from each "
        "machine).",
        table,
    ]
    shown_to = page.offset + len(lines)
    if page.offset or shown_to < page.total:
        more = f"; the next: --offset {shown_to}" if shown_to < page.total else ""
        out.append(f"Lines {page.offset + 1:,} to {shown_to:,} of {page.total:,}{more}.")
    return "\n".join(out)
