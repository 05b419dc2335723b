"""What one run measures: sizes, durations and caller counts (the full run, --quick, and
--smoke of each)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from scripts.benchmark import BenchError


@dataclass(frozen=True)
class Sizes:
    """The large database's users and licenses, with enough seats for every user."""

    users: int = 100_000
    licenses: int = 1_000

    @property
    def seats_per_license(self) -> int:
        """Enough seats for every user."""
        return -(-self.users // self.licenses)

    @property
    def seats_total(self) -> int:
        """Seats of all the large database's licenses together."""
        return self.seats_per_license * self.licenses


@dataclass(frozen=True)
class Plan(Sizes):
    """Sizes, durations and caller counts of one run."""

    small_users: int = 100
    # Enabled one call at a time, and again (other users) in one call.
    enable: int = 10_000
    callers: tuple[int, ...] = (16, 64)
    # Measured seconds per row, split over `rounds` interleaved rounds (each with its own
    # warm-up): the machine's noise then falls on every row alike.
    duration_seconds: float = 10.0
    rounds: int = 3
    warmup_seconds: float = 1.0
    # Enabling one call at a time stops after this long; the rest is projected.
    single_enable_seconds: float = 30.0
    startup_runs: int = 3
    status_calls: int = 20
    channels: str = "per-caller"
    # --quick: the empty call, the minimal reference's and the real server's 6.x login
    # only, at `users`; no small database, no admin calls at size.
    quick: bool = False
    smoke: bool = False

    @property
    def small_enabled(self) -> int:
        """Enabled in the small database (it has one license for all its users)."""
        return self.small_users * 4 // 5

    @property
    def enabled_at_start(self) -> int:
        """Enabled in the prepared database: room is left to enable `enable` twice."""
        return self.users - 2 * self.enable

    def check(self) -> None:
        """Refuse sizes that cannot work."""
        if min(self.callers, default=0) < 1 or self.duration_seconds <= 0 or self.rounds < 1:
            raise BenchError("callers, the duration and the rounds must be positive")
        if min(self.enabled_at_start, self.small_enabled) < max(self.callers):
            raise BenchError(
                "too few users: every caller logs in as an enabled user of its own "
                f"(users {self.users}, enabled {self.enabled_at_start}, callers "
                f"{max(self.callers)})"
            )


FULL = Plan()
SMOKE = Plan(
    users=200,
    licenses=10,
    small_users=100,
    enable=50,
    callers=(4, 16),
    duration_seconds=1.0,
    rounds=1,
    warmup_seconds=0.3,
    single_enable_seconds=10.0,
    startup_runs=1,
    status_calls=3,
    smoke=True,
)

# About a minute: 3 rows x 2 caller counts x 3 rounds of 0.5 + 2 s, and the database.
QUICK = Plan(duration_seconds=6.0, warmup_seconds=0.5, startup_runs=1, quick=True)
QUICK_SMOKE = dataclasses.replace(
    SMOKE, duration_seconds=1.2, rounds=3, warmup_seconds=0.2, quick=True
)
