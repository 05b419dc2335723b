"""How long each RPC took, counted into fixed buckets of seconds: one histogram a method.

The gRPC layer measures a call and hands its duration to `Histogram.observe` (one
bisection and two additions: cheap on the login path); the metrics read `snapshot()`
when they are scraped. Pure: the caller passes the seconds in.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

# Upper bounds in seconds: a login is served in well under a millisecond, an admin change
# that commits to disk in a few; the last buckets catch a stalled call.
BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Histogram:
    """Durations of one method: how many fell into each bucket, and their sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        # counts[i]: durations above BUCKETS[i - 1] and at most BUCKETS[i]; the last one
        # counts those above every bound.
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Count one call that took `seconds`."""
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds


@dataclass(frozen=True)
class MethodTimes:
    """One method's durations as Prometheus reads a histogram: cumulative counts."""

    service: str
    method: str
    # (upper bound, calls that took at most that long), the last bound +Inf.
    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float


class CallTimes:
    """A histogram for each method served, by (service, method)."""

    def __init__(self) -> None:
        self._methods: dict[tuple[str, str], Histogram] = {}

    def histogram(self, service: str, method: str) -> Histogram:
        """The method's histogram (made once, when the server is built)."""
        return self._methods.setdefault((service, method), Histogram())

    def snapshot(self) -> list[MethodTimes]:
        """Every method's durations so far, by service and method."""
        found = []
        for (service, method), hist in sorted(self._methods.items()):
            running, buckets = 0, []
            for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                running += count
                buckets.append((bound, running))
            found.append(MethodTimes(service, method, tuple(buckets), running, hist.sum))
        return found
