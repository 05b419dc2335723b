"""Prometheus metrics at /metrics, read from the service when scraped.

Nothing is counted for the metrics alone on the login path: logins come from the service's
login tally (`service.tally`), admin changes from `service.changes`, sessions from the
session table, the licensing state from the status view, the RPCs' durations from the
histograms the gRPC layer fills (`CallTimes`). A collector turns them into metric families
at each scrape, in prometheus-client's registry and exposition format (the text format, or
OpenMetrics when the scraper asks for it).

Each metric is one function of `SERIES`, from a `Scrape` (the service, its status view,
the time) to metric families: a new metric is one function more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as day_start

from aiohttp import web
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from officestatus.wire import DenyReason
from officestatus_server.core.status import StatusView
from officestatus_server.core.tally import ChangeResult, LoginKey
from officestatus_server.core.timings import CallTimes
from officestatus_server.core.versions import Release
from officestatus_server.service import ADMIN_CHANGE_KINDS, LicenseService

PREFIX = "officestatus_"
# Scrapes closer together than this get the figures of the first (a scraper gone wild
# costs the event loop one collection a second, however often it asks).
REUSE_SECONDS = 1.0


def release_label(release: Release) -> str:
    """A client release as the labels name it: "5.x"."""
    return f"{int(release)}.x"


@dataclass(frozen=True)
class Scrape:
    """What one scrape reads: the service, its status view and the time, once."""

    service: LicenseService
    view: StatusView
    now: datetime
    times: CallTimes | None


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, value=value)


def licensing(s: Scrape) -> Iterator[Metric]:
    """Seats, users and the evaluation, as the status shows them."""
    view = s.view
    yield InfoMetricFamily(
        PREFIX + "server", "The server's version.", {"version": view.server_version}
    )
    yield _gauge("seats", "Seats of the licenses that count on this server.", view.seats_total)
    yield _gauge("seats_used", "Seats taken by enabled users.", view.seats_used)
    yield _gauge(
        "seats_unlimited", "1 while the evaluation gives no seat limit, else 0.", view.unlimited
    )
    yield _gauge("users_enabled", "Enabled users (each needs a seat).", view.users_enabled)
    yield _gauge(
        "users_over_capacity",
        "Enabled users beyond the seats (refused at login).",
        len(view.over_capacity),
    )
    yield _gauge("evaluation_active", "1 while the evaluation runs, else 0.", view.evaluation)
    yield _gauge(
        "evaluation_days_left",
        "Whole days of the evaluation left, as the status counts them (0 when it is over).",
        view.evaluation_days_left,
    )
    if view.evaluation and view.evaluation_ends_at is not None:
        yield _gauge(
            "evaluation_end_timestamp_seconds",
            "When the evaluation ends (Unix time).",
            view.evaluation_ends_at.timestamp(),
        )
    if view.support_until is not None:
        ends = datetime.combine(view.support_until, day_start(), tzinfo=UTC)
        yield _gauge(
            "support_days_left",
            "Whole days of support left (0 when it has ended).",
            max(0, (view.support_until - s.now.date()).days),
        )
        yield _gauge(
            "support_end_timestamp_seconds", "When support ends (Unix time).", ends.timestamp()
        )


def alerts(s: Scrape) -> Iterator[Metric]:
    """The seat and evaluation alerts: 1 while in force, 0 otherwise, every kind listed
    from the start (an alert rule sees a 0 before the first crossing)."""
    active = {alert.kind for alert in s.service.alerts()}
    family = GaugeMetricFamily(
        PREFIX + "alert_active",
        "1 while an alert is in force, else 0, by kind: seats_<percent> when the enabled "
        "users reach that share of the seats, evaluation_ending in its last 7 days.",
        labels=["kind"],
    )
    for kind in s.service.alert_kinds():
        family.add_metric([kind], 1 if kind in active else 0)
    yield family


def sessions(s: Scrape) -> Iterator[Metric]:
    """Live sessions (5.x and later clients), by client release."""
    live = s.service.live_sessions_by_release()
    family = GaugeMetricFamily(
        PREFIX + "sessions_live",
        "Live client sessions (5.x and later), by the client release that opened them.",
        labels=["release"],
    )
    for release in Release:
        if release.has_sessions:
            family.add_metric([release_label(release)], live.get(release, 0))
    yield family


def logins(s: Scrape) -> Iterator[Metric]:
    """Logins granted and refused since the server started, by reason and client release."""
    totals = s.service.tally.totals()
    granted = CounterMetricFamily(
        PREFIX + "logins_granted",
        "Logins granted since the server started, by client release.",
        labels=["release"],
    )
    denied = CounterMetricFamily(
        PREFIX + "logins_denied",
        "Logins refused since the server started, by reason and client release.",
        labels=["reason", "release"],
    )
    for release in Release:
        label = release_label(release)
        for reason in DenyReason:
            count = totals.get(LoginKey(reason, release), 0)
            if reason is DenyReason.UNSPECIFIED:
                granted.add_metric([label], count)
            elif reason is not DenyReason.SESSION_ENDED:  # a heartbeat's reason only
                denied.add_metric([reason.name, label], count)
    yield granted
    yield denied


def admin_changes(s: Scrape) -> Iterator[Metric]:
    """Admin changes since the server started, by kind and result."""
    totals = s.service.changes.totals()
    family = CounterMetricFamily(
        PREFIX + "admin_changes",
        "Admin changes since the server started, by kind (as the audit names it) and "
        "result: done, refused (nothing changed) or failed (the server failed).",
        labels=["kind", "result"],
    )
    kinds = sorted({*ADMIN_CHANGE_KINDS, *(kind for kind, _ in totals)})
    for kind in kinds:
        for result in ChangeResult:
            family.add_metric([kind, result.value], totals.get((kind, result), 0))
    yield family


def rpc_durations(s: Scrape) -> Iterator[Metric]:
    """How long the RPCs took, per service and method (those called at least once)."""
    if s.times is None:
        return
    family = HistogramMetricFamily(
        PREFIX + "rpc_duration_seconds",
        "Time from a call's arrival at its handler to its answer, per service and method.",
        labels=["service", "method"],
    )
    for found in s.times.snapshot():
        if found.count:
            buckets = [("+Inf" if b == float("inf") else repr(b), n) for b, n in found.buckets]
            family.add_metric([found.service, found.method], buckets, found.sum)
    yield family


# Every metric, in the order the exposition lists them.
SERIES: list[Callable[[Scrape], Iterable[Metric]]] = [
    licensing,
    alerts,
    sessions,
    logins,
    admin_changes,
    rpc_durations,
]


class ServiceCollector:
    """A prometheus-client collector reading the service at each scrape."""

    def __init__(
        self,
        service: LicenseService,
        times: CallTimes | None = None,
        series: Iterable[Callable[[Scrape], Iterable[Metric]]] = SERIES,
    ) -> None:
        self._service = service
        self._times = times
        self._series = tuple(series)

    def collect(self) -> Iterator[Metric]:
        """Every metric family, from one status view."""
        service = self._service
        scrape = Scrape(service, service.status(), service.now(), self._times)
        for series in self._series:
            yield from series(scrape)


def registry_for(service: LicenseService, times: CallTimes | None) -> CollectorRegistry:
    """A registry of the service's metrics and the process's own (CPU, memory, open files,
    Python's garbage collector)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service, times))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class MetricsPage:
    """The /metrics route: the registry in the exposition format the scraper accepts."""

    def __init__(self, registry: CollectorRegistry, reuse_seconds: float = REUSE_SECONDS) -> None:
        self._registry = registry
        self._reuse = reuse_seconds
        # content type: (when made, the body)
        self._made: dict[str, tuple[float, bytes]] = {}

    def routes(self) -> list[web.RouteDef]:
        """The routes to add to the HTTP listener."""
        return [web.get("/metrics", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        """One scrape."""
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        now = time.monotonic()
        made = self._made.get(content_type)
        if made is None or now - made[0] >= self._reuse:
            made = (now, encoder(self._registry))
            self._made[content_type] = made
        response = web.Response(body=made[1])
        response.headers["Content-Type"] = content_type
        return response
