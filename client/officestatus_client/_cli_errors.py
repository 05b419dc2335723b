"""How officestatus-admin ends: the exit codes in one table, and the failures that map to them.

A script tells what happened from the exit code alone; under `--json` it also reads the
error document on standard output, which names the same exit code. `Exit` and `MEANING`
below are the one table: `--help` prints it, and the README's "Exit codes" lists the same
codes (a test compares them). 141 is 128 + SIGPIPE, what a shell reports for a tool that
SIGPIPE ends, so that `set -o pipefail` scripts see for `user list | head -1` what they see
for `cat`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from officestatus_client._errors import AuthenticationError, OfficeStatusError, UnavailableError


class Exit(IntEnum):
    """An exit code of officestatus-admin."""

    OK = 0
    REFUSED = 1
    USAGE = 2
    UNREACHABLE = 3
    NOT_AUTHORISED = 4
    PROBLEMS_FOUND = 5
    INTERRUPTED = 130
    BROKEN_PIPE = 141


# What each exit code means, for `--help` and the README: the table a reader scans.
MEANING: dict[Exit, str] = {
    Exit.OK: "done",
    Exit.REFUSED: "the server refused or failed the request; a login was refused",
    Exit.USAGE: "usage error: bad arguments, an unreadable input file, a target that exists",
    Exit.UNREACHABLE: "the server cannot be reached, or did not answer in time",
    Exit.NOT_AUTHORISED: "no admin token, an unreadable one, or the wrong one",
    Exit.PROBLEMS_FOUND: "a check found problems: a tampered audit log, a damaged backup",
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
    Exit.BROKEN_PIPE: "the reader of the output went away (as in `user list | head -1`)",
}


def exit_codes_text() -> str:
    """The exit-code table as `--help` shows it."""
    lines = ["exit codes:"]
    lines += [f"  {int(code):<4} {MEANING[code]}" for code in Exit]
    return "\n".join(lines)


class UsageError(Exception):
    """Arguments that parse but cannot be used, such as a key file that cannot be read."""


class ProblemsFound(Exception):
    """A check ran and found problems (exit code 5): a tampered audit log, or a backup
    that is damaged. With a `report` (the check's own, as text or JSON), that is printed;
    without, the message is reported as any failure is."""

    def __init__(self, message: str, report: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.report = report


@dataclass(frozen=True)
class Failure:
    """A run that failed, as it is reported: a code for programs, a sentence for people."""

    exit: Exit
    # The gRPC status code's name, or USAGE, INTERRUPTED, PROBLEMS_FOUND for the CLI's own.
    code: str
    message: str
    # The server's UPPER_SNAKE reason, "" when it sent none.
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        """The `error` object of the JSON error document."""
        return {
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
            "exit_code": int(self.exit),
            "exit": self.exit.name,
        }


def failure_from(exc: OfficeStatusError) -> Failure:
    """The failure a client error is reported as: the one mapping to exit codes."""
    if isinstance(exc, UnavailableError):
        exit_ = Exit.UNREACHABLE
    elif isinstance(exc, AuthenticationError):
        exit_ = Exit.NOT_AUTHORISED
    else:
        exit_ = Exit.REFUSED
    return Failure(exit_, exc.code, exc.message, exc.reason)
