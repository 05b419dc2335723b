"""Who may use OfficeStatus now: the answers to a login or heartbeat, in one table.

`ANSWERS` is the whole of what a client is told: for each rule, whether it grants, the
deny code a 6.x client sees, the code 4.x and 5.x clients see instead (their releases do
not define the 6.x-only codes; 3.x clients read no code at all), and the message. The
order the rules apply in, the first that holds deciding:

1. The name is no valid user name, or no user has it.
2. The user is disabled.
3. The evaluation is active: every enabled user is welcome.
4. The evaluation has ended (or the clock was set back) and no license has seats.
5. No license has seats.
6. More users are enabled than there are seats, and this one was enabled after the
   users who hold them.
7. Otherwise: welcome.

A heartbeat asks the same from rule 2 on; a session that is gone, or a user removed
while signed in, is told so.
"""

from __future__ import annotations

import weakref
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from officestatus.wire import DenyReason
from officestatus_server.core.evaluation import Evaluation
from officestatus_server.core.model import User
from officestatus_server.core.names import MAX_NAME_LENGTH, clean_name, name_key
from officestatus_server.core.registry import Registry
from officestatus_server.core.texts import count
from officestatus_server.errors import InvalidInput


class Decision(NamedTuple):
    """The answer to a login or heartbeat, before it is shaped for a client release.
    (A named tuple: immutable, and cheap to make on every login.)"""

    granted: bool
    reason: DenyReason
    message: str
    user_name: str = ""


class Rule(StrEnum):
    """Why a client is told what it is told: one row of `ANSWERS` each."""

    WELCOME_EVALUATION = "welcome, evaluating"
    WELCOME = "welcome"
    NAME_INVALID = "not a user name"
    USER_UNKNOWN = "no such user"
    USER_REMOVED = "user removed while signed in"
    USER_DISABLED = "user disabled"
    CLOCK_SET_BACK = "evaluation ended by the clock set back, no seats"
    EVALUATION_ENDED = "evaluation ended, no seats"
    NOT_LICENSED = "no seats"
    OVER_CAPACITY_ONE_SEAT = "the one seat held by a user enabled earlier"
    OVER_CAPACITY = "every seat held by users enabled earlier"
    SESSION_ENDED = "session gone"
    SESSION_ENDED_USER_LIMIT = "session ended: the user signed in on too many machines"
    SESSION_ENDED_SERVER_LIMIT = "session ended: the server holds too many sessions"
    SESSION_ENDED_BY_ADMIN = "session ended by an administrator"


class Answer(NamedTuple):
    """One row of `ANSWERS`."""

    granted: bool
    # The code 6.x clients see.
    reason: DenyReason
    # The code 4.x and 5.x clients see (3.x clients read none).
    before_6: DenyReason
    # The message; its {fields} are filled in by `answer`.
    text: str


_ASK_FOR_LICENSE = "Ask your administrator to install a license."
_ASK_FOR_SEATS = "Ask your administrator to disable a user or install more seats."

# fmt: off
ANSWERS: dict[Rule, Answer] = {
    # rule: Answer(granted, code 6.x sees, code 4.x and 5.x see, message)
    Rule.WELCOME_EVALUATION: Answer(True, DenyReason.UNSPECIFIED, DenyReason.UNSPECIFIED,
        "Welcome, {name}. OfficeStatus is being evaluated: {days_left} left."),
    Rule.WELCOME: Answer(True, DenyReason.UNSPECIFIED, DenyReason.UNSPECIFIED,
        "Welcome, {name}."),
    Rule.NAME_INVALID: Answer(False, DenyReason.USER_UNKNOWN, DenyReason.USER_UNKNOWN,
        "{problem} Sign in with your user name."),
    Rule.USER_UNKNOWN: Answer(False, DenyReason.USER_UNKNOWN, DenyReason.USER_UNKNOWN,
        "OfficeStatus does not know the user '{name}'. Ask your administrator to add you to "
        "the OfficeStatus License Server."),
    Rule.USER_REMOVED: Answer(False, DenyReason.USER_UNKNOWN, DenyReason.USER_UNKNOWN,
        "Your user is no longer known to the OfficeStatus License Server. Ask your "
        "administrator."),
    Rule.USER_DISABLED: Answer(False, DenyReason.USER_DISABLED, DenyReason.USER_DISABLED,
        "The user '{name}' is disabled in OfficeStatus. Ask your administrator to enable you."),
    Rule.CLOCK_SET_BACK: Answer(False, DenyReason.EVALUATION_EXPIRED, DenyReason.EVALUATION_EXPIRED,
        "The OfficeStatus evaluation has ended: this computer's clock was set back. "
        + _ASK_FOR_LICENSE),
    Rule.EVALUATION_ENDED: Answer(
        False, DenyReason.EVALUATION_EXPIRED, DenyReason.EVALUATION_EXPIRED,
        "The OfficeStatus evaluation ended on {ended}. " + _ASK_FOR_LICENSE),
    Rule.NOT_LICENSED: Answer(False, DenyReason.NOT_LICENSED, DenyReason.NOT_LICENSED,
        "OfficeStatus {major} has no license installed. " + _ASK_FOR_LICENSE),
    Rule.OVER_CAPACITY_ONE_SEAT: Answer(False, DenyReason.OVER_CAPACITY, DenyReason.NOT_LICENSED,
        "The one OfficeStatus seat is held by a user enabled before you. " + _ASK_FOR_SEATS),
    Rule.OVER_CAPACITY: Answer(False, DenyReason.OVER_CAPACITY, DenyReason.NOT_LICENSED,
        "All {seats} OfficeStatus seats are held by users enabled before you. "
        + _ASK_FOR_SEATS),
    Rule.SESSION_ENDED: Answer(False, DenyReason.SESSION_ENDED, DenyReason.UNSPECIFIED,
        "Your OfficeStatus session has ended. Sign in again."),
    Rule.SESSION_ENDED_USER_LIMIT: Answer(False, DenyReason.SESSION_ENDED, DenyReason.UNSPECIFIED,
        "This session was ended because {name} signed in on more than {max_per_user} "
        "machines; sign in again."),
    Rule.SESSION_ENDED_SERVER_LIMIT: Answer(False, DenyReason.SESSION_ENDED, DenyReason.UNSPECIFIED,
        "This session was ended because the OfficeStatus License Server holds at most "
        "{max_total:,} sessions and this one had been idle longest; sign in again."),
    Rule.SESSION_ENDED_BY_ADMIN: Answer(False, DenyReason.SESSION_ENDED, DenyReason.UNSPECIFIED,
        "An administrator ended this session; sign in again."),
}
# fmt: on


def _codes_before_6() -> dict[DenyReason, DenyReason]:
    """Each code as 4.x and 5.x clients are sent it, from the table: one stand-in per code."""
    codes: dict[DenyReason, DenyReason] = {}
    for row in ANSWERS.values():
        if codes.setdefault(row.reason, row.before_6) is not row.before_6:
            raise AssertionError(f"{row.reason.name} has two stand-ins before 6.x")
    missing = set(DenyReason) - set(codes)
    if missing:
        raise AssertionError(f"no answer has the code {sorted(d.name for d in missing)}")
    return codes


CODES_BEFORE_6 = _codes_before_6()


def answer(rule: Rule, user_name: str = "", **fields: object) -> Decision:
    """The decision a rule gives, its message filled in with `fields`."""
    row = ANSWERS[rule]
    return Decision(row.granted, row.reason, row.text.format(**fields), user_name)


def decide_login(registry: Registry, raw_name: str, now: datetime) -> Decision:
    """May this user use OfficeStatus now? Rules 1 to 7 of the module."""
    try:
        name = clean_name(raw_name)
    except InvalidInput as exc:
        return answer(Rule.NAME_INVALID, problem=exc.message)
    user = registry.user(name)
    if user is None:
        return answer(Rule.USER_UNKNOWN, name, name=name)
    return standing(registry, user, now)


def standing(registry: Registry, user: User, now: datetime) -> Decision:
    """Whether a known user holds a seat now: rules 2 to 7 of the module."""
    name = user.name
    if not user.enabled:
        return answer(Rule.USER_DISABLED, name, name=name)
    evaluation = registry.evaluation(now)
    if evaluation.active:
        return answer(
            Rule.WELCOME_EVALUATION, name, name=name, days_left=count(evaluation.days_left, "day")
        )
    seats = registry.seats
    if evaluation.expired and seats == 0:
        if evaluation.clock_set_back:
            return answer(Rule.CLOCK_SET_BACK, name)
        ended = evaluation.ends_at.date().isoformat() if evaluation.ends_at else ""
        return answer(Rule.EVALUATION_ENDED, name, ended=ended)
    if seats == 0:
        return answer(Rule.NOT_LICENSED, name, major=registry.major)
    # The enable order is only looked at when there are more enabled users than seats.
    if registry.oversubscribed and registry.rank[name_key(name)] >= seats:
        if seats == 1:
            return answer(Rule.OVER_CAPACITY_ONE_SEAT, name)
        return answer(Rule.OVER_CAPACITY, name, seats=seats)
    return answer(Rule.WELCOME, name, name=name)


# Decisions kept of each kind at most (there is also at most one login spelling per user).
DECISIONS_KEPT = 200_000


class DecisionCache:
    """The granted login and heartbeat decisions made for one registry and evaluation:
    logins by the name as the client sent it, heartbeats by the user's key.

    A decision follows from the registry (never changed: every change makes a new one),
    the evaluation (the same object while its state holds) and the name alone. So a user
    who signs in again, or whose session heartbeats, is answered without the rules being
    run again, until either changes. Only granted decisions are kept, of a login only the
    first spelling of each user's name that is no longer than a name can be, and at most
    `limit` of each kind (a full cache starts over): names of no user, names padded to the
    request's size, or one name sent in ever new spellings cannot fill memory. The
    registry is held weakly, as the one it replaced must not be kept alive for this."""

    def __init__(self, limit: int = DECISIONS_KEPT) -> None:
        self._limit = limit
        self._for: tuple[weakref.ref[Registry], Evaluation] | None = None
        self._kept: dict[str, tuple[Decision, str]] = {}
        # The users (by key) with a spelling kept in _kept.
        self._spelled: set[str] = set()
        self._standing: dict[str, Decision] = {}

    def __len__(self) -> int:
        return len(self._kept) + len(self._standing)

    def _holds(self, registry: Registry, now: datetime) -> bool:
        """Whether what is kept was decided for this registry and evaluation; if not,
        it is dropped and the cache starts over for them."""
        evaluation = registry.evaluation(now)
        held = self._for
        if held is not None and held[0]() is registry and held[1] is evaluation:
            return True
        self._kept = {}
        self._spelled = set()
        self._standing = {}
        self._for = (weakref.ref(registry), evaluation)
        return False

    def decide(self, registry: Registry, raw_name: str, now: datetime) -> tuple[Decision, str]:
        """`decide_login`'s decision, and the user's key when it is granted ("" if not)."""
        if self._holds(registry, now):
            found = self._kept.get(raw_name)
            if found is not None:
                return found
        decision = decide_login(registry, raw_name, now)
        if not decision.granted:
            return decision, ""
        key = name_key(decision.user_name)
        found = (decision, key)
        if len(raw_name) <= MAX_NAME_LENGTH and key not in self._spelled:
            if len(self._kept) >= self._limit:
                self._kept = {}
                self._spelled = set()
            self._kept[raw_name] = found
            self._spelled.add(key)
        return found

    def standing(self, registry: Registry, user_key: str, user: User, now: datetime) -> Decision:
        """`standing`'s decision for the user with this key (a heartbeat's)."""
        if self._holds(registry, now):
            found = self._standing.get(user_key)
            if found is not None:
                return found
        decision = standing(registry, user, now)
        if decision.granted:
            if len(self._standing) >= self._limit:
                self._standing = {}
            self._standing[user_key] = decision
        return decision
