"""The status page's Usage and Users pages as pure functions: the SVG charts (well-formed,
titled, told apart without colour), the usage table and CSV, and the users' search,
filter and pages at 100,000 users."""

from __future__ import annotations

import csv
import io
import time
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest

from officestatus_server.core.model import User
from officestatus_server.core.registry import Registry
from officestatus_server.core.usage import UsageHour
from officestatus_server.http.charts import (
    Line,
    Stroke,
    bar_chart,
    line_chart,
    nice_ceiling,
    ticks,
)
from officestatus_server.http.usage_page import (
    DAYS,
    denials_chart,
    peaks_chart,
    usage_csv,
    usage_view,
)
from officestatus_server.http.users_page import PAGE_SIZE, Show, UserIndex, UsersQuery
from tests.core_support import add, at, disable, licensed, remove
from tests.support import Vendor

SVG = "{http://www.w3.org/2000/svg}"
TODAY = date(2026, 12, 4)


def parsed(svg: str) -> ET.Element:
    """The SVG parsed as XML: it must be well-formed."""
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


# --- charts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (10, 10), (11, 20), (35, 50)]
)
def test_an_axis_ends_at_one_two_or_five_times_a_power_of_ten(value: int, top: int) -> None:
    assert nice_ceiling(value) == top
    assert ticks(top)[0] == 0
    assert ticks(top)[-1] == top
    assert all(isinstance(t, int) for t in ticks(top))


def test_a_line_chart_names_each_line_and_tells_them_apart_without_colour() -> None:
    svg = line_chart(
        "Peaks",
        "Enabled and sessions",
        ["a", "b", "c", "d"],
        [
            Line("Enabled users", [1, 2, None, 4], Stroke.SOLID),
            Line("Live sessions", [0, 1, 1, 3], Stroke.DASHED),
            Line("Seats", [5, 5, 5, 5], Stroke.DOTTED),
        ],
        chart_id="t",
    )
    root = parsed(svg)
    assert root.findtext(f"{SVG}title") == "Peaks"
    assert root.get("aria-labelledby") == "t-title t-desc"
    words = texts(root)
    # Named in the legend and at each line's last point, with its value.
    assert {"Enabled users", "Live sessions", "Seats"} <= set(words)
    assert {"Enabled users: 4", "Live sessions: 3", "Seats: 5"} <= set(words)
    # Each line has a dash pattern of its own (solid has none); markers differ.
    lines = root.findall(f"{SVG}polyline")
    dashes = {p.get("stroke-dasharray") for p in lines}
    assert dashes == {None, "8 4", "2 3"}
    assert root.findall(f"{SVG}circle")
    assert root.findall(f"{SVG}rect")
    # The gap (None) splits the enabled users' line in two (and one stretch in the legend).
    solid = [p for p in lines if p.get("stroke-dasharray") is None]
    assert len(solid) == 3
    # No colour named, no inline style (the page's CSP allows none).
    assert "style=" not in svg
    assert all(
        v in ("none", "currentColor") or v.startswith("url(")
        for e in root.iter()
        for a, v in e.attrib.items()
        if a in ("fill", "stroke")
    )


def test_a_chart_escapes_its_labels() -> None:
    svg = bar_chart("<b>", "&", [("<script>alert(1)</script>", 3)], chart_id="x")
    root = parsed(svg)
    assert "<script>" not in svg
    assert "<script>alert(1)</script>" in texts(root)


def test_a_bar_chart_labels_each_bar_with_its_count_and_hatches_it() -> None:
    root = parsed(
        bar_chart("D", "d", [("SEATS_EXHAUSTED", 1200), ("USER_DISABLED", 3)], chart_id="d")
    )
    words = texts(root)
    assert words == ["SEATS_EXHAUSTED", "1,200", "USER_DISABLED", "3"]
    bars = root.findall(f"{SVG}rect")
    assert [b.get("fill") for b in bars] == ["url(#d-hatch)"] * 2
    assert float(bars[0].get("width", 0)) > float(bars[1].get("width", 0)) > 0
    assert texts(parsed(bar_chart("D", "d", [], chart_id="e"))) == ["Nothing to show."]


def test_a_line_chart_refuses_values_that_do_not_match_the_labels() -> None:
    with pytest.raises(ValueError, match="3 values for 2"):
        line_chart("T", "d", ["a", "b"], [Line("L", [1, 2, 3], Stroke.SOLID)], chart_id="t")


# --- the usage page -------------------------------------------------------------------


def hour(day: date, h: int, **fields: object) -> UsageHour:
    return UsageHour(datetime(day.year, day.month, day.day, h, tzinfo=UTC), **fields)  # type: ignore[arg-type]


def sample_hours() -> list[UsageHour]:
    yesterday = TODAY - timedelta(days=1)
    early = TODAY - timedelta(days=DAYS - 1)
    return [
        # Before the window: left out.
        hour(TODAY - timedelta(days=DAYS), 9, peak_enabled=99, seats=99, granted=9),
        hour(early, 9, peak_enabled=3, peak_sessions=1, seats=None, granted=4),
        hour(yesterday, 9, peak_enabled=8, peak_sessions=5, seats=10, granted=20,
             denials={("SEATS_EXHAUSTED", 5): 2, ("USER_DISABLED", 6): 1}),
        hour(yesterday, 14, peak_enabled=10, peak_sessions=7, seats=10, granted=5,
             denials={("SEATS_EXHAUSTED", 6): 3}),
        hour(TODAY, 8, peak_enabled=9, peak_sessions=2, seats=10, granted=1),
    ]  # fmt: skip


def test_the_usage_view_has_every_day_of_the_window_and_the_denials_by_reason() -> None:
    view = usage_view(sample_hours(), TODAY)
    assert view.first == TODAY - timedelta(days=DAYS - 1)
    assert view.last == TODAY
    assert len(view.rows) == DAYS
    assert view.days_with_data == 3
    yesterday = view.rows[-2]
    assert yesterday.data is not None
    assert (yesterday.data.peak_enabled, yesterday.data.peak_sessions) == (10, 7)
    assert yesterday.denials == {"SEATS_EXHAUSTED": 5, "USER_DISABLED": 1}
    assert view.rows[0].seats_text == "no limit"
    assert view.rows[1].data is None
    assert [(r.reason, r.total, r.releases_text) for r in view.reasons] == [
        ("SEATS_EXHAUSTED", 5, "5.x: 2, 6.x: 3"),
        ("USER_DISABLED", 1, "6.x: 1"),
    ]


def test_the_usage_csv_parses_with_one_row_a_day_and_a_column_per_reason() -> None:
    rows = list(csv.DictReader(io.StringIO(usage_csv(usage_view(sample_hours(), TODAY)))))
    assert len(rows) == DAYS
    assert rows[-2] == {
        "date": (TODAY - timedelta(days=1)).isoformat(),
        "peak_enabled_users": "10",
        "peak_live_sessions": "7",
        "seats": "10",
        "logins_granted": "25",
        "logins_denied": "6",
        "hours_recorded": "2",
        "no_seat_limit": "0",
        "denied_SEATS_EXHAUSTED": "5",
        "denied_USER_DISABLED": "1",
    }
    assert rows[0]["seats"] == ""
    assert rows[0]["no_seat_limit"] == "1"
    assert rows[1]["hours_recorded"] == "0"
    assert rows[1]["peak_enabled_users"] == ""


def test_the_usage_charts_show_the_peaks_against_the_seats_and_the_reasons() -> None:
    view = usage_view(sample_hours(), TODAY)
    peaks = texts(parsed(peaks_chart(view)))
    assert "Enabled users: 9" in peaks
    assert "Seats: 10" in peaks
    assert "Live sessions: 2" in peaks
    assert texts(parsed(denials_chart(view))) == ["SEATS_EXHAUSTED", "5", "USER_DISABLED", "1"]
    empty = usage_view([], TODAY)
    assert "Nothing to show." in texts(parsed(denials_chart(empty)))
    assert parsed(peaks_chart(empty)).find(f"{SVG}polyline") is not None  # the legend


# --- the users page -------------------------------------------------------------------


def test_a_query_is_read_leniently_and_written_back_without_defaults() -> None:
    assert UsersQuery.parse({}) == UsersQuery()
    assert UsersQuery.parse({"q": " al ", "show": "over", "page": "3"}) == UsersQuery(
        "al", Show.OVER, 3
    )
    assert UsersQuery.parse({"show": "nonsense", "page": "-4"}) == UsersQuery()
    assert UsersQuery.parse({"page": "x"}).page == 1
    assert UsersQuery().url() == "/users"
    assert UsersQuery("a b", Show.ENABLED, 1).url(page=2) == "/users?q=a+b&show=enabled&page=2"


def test_users_are_found_filtered_and_paged(vendor: Vendor) -> None:
    registry = licensed(vendor, 3, 2)
    registry = add(registry, ["Carol", "alice", "bob", "dave", "Alina"], at(2))
    registry = disable(registry, ["dave"], at(2))
    # 3 seats left for 4 enabled users.
    registry = remove(registry, registry.licenses[1].license_id, at(2), force=True)
    index = UserIndex()
    now = at(3)

    def shown(query: UsersQuery, reg: Registry = registry) -> list[tuple[str, str]]:
        return [(r.user.name, r.state) for r in index.page(reg, now, query).rows]

    assert [n for n, _ in shown(UsersQuery())] == ["alice", "Alina", "bob", "Carol", "dave"]
    assert shown(UsersQuery("AL")) == [("alice", "enabled"), ("Alina", "enabled, over capacity")]
    assert shown(UsersQuery(show=Show.DISABLED)) == [("dave", "disabled")]
    # Enabled first to last: Carol, alice, bob hold the 3 seats; Alina is over capacity.
    assert shown(UsersQuery(show=Show.OVER)) == [("Alina", "enabled, over capacity")]
    page = index.page(registry, now, UsersQuery(show=Show.ENABLED))
    assert page.counts == {Show.ALL: 5, Show.ENABLED: 4, Show.DISABLED: 1, Show.OVER: 1}
    assert (page.found, page.pages, page.first_shown, page.last_shown) == (4, 1, 1, 4)
    # A change (a new registry) is seen at once.
    after = disable(registry, ["alice"], at(3))
    assert shown(UsersQuery("ali"), after) == [("alice", "disabled"), ("Alina", "enabled")]
    assert shown(UsersQuery("nobody")) == []
    assert index.page(registry, now, UsersQuery("nobody")).first_shown == 0


def test_100000_users_page_search_and_filter_fast(vendor: Vendor) -> None:
    base = licensed(vendor, 25)
    users = [
        User(f"user{i:06d}", i % 3 != 0, at(1), at(1) if i % 3 else None, i) for i in range(100_000)
    ]
    registry = Registry(base.installation, base.licenses, {u.name.upper(): u for u in users})
    index = UserIndex()
    now = at(2)
    index.page(registry, now, UsersQuery())  # sorts once
    started = time.perf_counter()
    last = index.page(registry, now, UsersQuery(page=10_000))
    found = index.page(registry, now, UsersQuery("user054321"))
    over = index.page(registry, now, UsersQuery(show=Show.OVER, page=2))
    disabled = index.page(registry, now, UsersQuery("user0999", show=Show.DISABLED))
    elapsed = time.perf_counter() - started
    assert last.query.page == last.pages == 100_000 // PAGE_SIZE
    assert [r.user.name for r in found.rows] == ["user054321"]
    assert over.counts[Show.OVER] == 66_666 - 25
    assert len(over.rows) == PAGE_SIZE
    assert disabled.rows[0].user.name == "user099900"
    assert all(not r.user.enabled for r in disabled.rows)
    assert disabled.found == 34
    # Four queries well under a second together on any machine the tests run on.
    assert elapsed < 2.0, elapsed
