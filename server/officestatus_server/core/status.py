"""The license status as an admin reads it: every number with where it comes from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from officestatus_server.core.registry import Counted, NotCounted, Registry
from officestatus_server.core.versions import SERVER_VERSION


@dataclass(frozen=True)
class StatusView:
    """The whole licensing state at one moment."""

    server_version: str
    major_version: int
    installation_id: str
    counting: tuple[Counted, ...]
    seats_total: int
    seats_used: int
    users_enabled: int
    over_capacity: tuple[str, ...]
    evaluation: bool
    evaluation_days_left: int
    evaluation_ends_at: datetime | None
    evaluation_expired: bool
    support_until: date | None
    not_counting: tuple[NotCounted, ...]
    summary: str
    unlimited: bool
    # Why the evaluation ended early, when the clock was set back.
    clock_warning: str = ""


def status_view(registry: Registry, now: datetime) -> StatusView:
    """Explain the licensing state: seats per license, their sum, use, evaluation, support."""
    evaluation = registry.evaluation(now)
    summary = registry.seats_phrase(now)
    set_back = registry.installation.clock_set_back
    clock_warning = ""
    if set_back is not None:
        clock_warning = (
            f"The system clock was set back: on {set_back.found.isoformat(timespec='minutes')} "
            f"it read earlier than {set_back.seen.isoformat(timespec='minutes')}, a time the "
            "server had already seen. The evaluation counts as ended; purchased licenses "
            "keep working."
        )
    support = registry.support_until
    if support is not None:
        summary += f"; support until {support.isoformat()}"
    return StatusView(
        server_version=str(SERVER_VERSION),
        major_version=registry.major,
        installation_id=registry.installation.installation_id,
        counting=registry.counted_rows,
        seats_total=registry.seats,
        seats_used=registry.seats_used(now),
        users_enabled=registry.enabled_count(),
        over_capacity=tuple(registry.over_capacity(now)),
        evaluation=evaluation.active,
        evaluation_days_left=evaluation.days_left,
        evaluation_ends_at=evaluation.ends_at,
        evaluation_expired=evaluation.expired,
        support_until=support,
        not_counting=registry.not_counted_rows,
        summary=summary,
        unlimited=evaluation.active,
        clock_warning=clock_warning,
    )
