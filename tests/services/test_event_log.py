"""The Events page's listing: device events and the alerts log, filtered, counted, polled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet.extensions import db
from fleet.services import event_log
from fleet.services.alerts import channels, ruleset
from fleet.services.alerts.audit import write_log
from fleet.services.alerts.ruleset import RuleSpec
from fleet.services.event_log import Cursor, LogFilter
from fleet.services.sweep import enforce_timeouts

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def listed(**view) -> list[tuple[str, str | None]]:
    """(kind, uid) of each entry of the first page of `view`, newest first."""
    return [(e.kind, e.uid) for e in event_log.events_screen(LogFilter(**view)).entries]


@pytest.fixture
def outage(make_device, receiver):
    """Two devices of two sites, a rule that fires on both, and the sweep that trips it."""
    make_device("Kiosk-Alpha", now=T0, site="Berlin Mitte")
    make_device("kiosk-bravo", now=T0, site="Paris")
    channels.add_channel("hook", receiver.url(), "admin@example.com", at(1))
    ruleset.add_rule(RuleSpec("down", "disconnected", ("hook",)), "admin@example.com", at(2))
    enforce_timeouts(at(301))


def test_it_lists_the_alerts_log_and_device_events_newest_first(outage):
    screen = event_log.events_screen(LogFilter())
    kinds = [entry.kind for entry in screen.entries]
    assert kinds.count("incident_opened") == 2 and kinds.count("status") == 2
    assert kinds[-4:] == ["rule_added", "channel_added", "registered", "registered"]
    times = [entry.created_at for entry in screen.entries]
    assert times == sorted(times, reverse=True)
    rule = screen.entries[-4]
    assert (rule.actor, rule.source, rule.uid) == ("admin@example.com", "operator", None)
    opened = next(e for e in screen.entries if e.kind == "incident_opened")
    assert opened.source == "alerts" and opened.actor is None and opened.uid is not None
    assert (screen.total, screen.pages, screen.capped) == (8, 1, False)


def test_it_filters_by_part_of_a_uid_in_any_case_including_the_incidents_it_names(outage):
    assert sorted(listed(device="ALPHA")) == [
        ("incident_opened", "Kiosk-Alpha"),
        ("registered", "Kiosk-Alpha"),
        ("status", "Kiosk-Alpha"),
    ]


def test_it_filters_by_part_of_a_site_in_any_case(outage):
    found = listed(site="mitte")
    assert {uid for _, uid in found} == {"Kiosk-Alpha"}
    assert "incident_opened" in {kind for kind, _ in found}
    assert listed(site="nowhere") == []


def test_a_kind_filter_covers_both_tables(outage):
    assert listed(kind="rule_added") == [("rule_added", None)]
    assert listed(kind="registered") == [
        ("registered", "kiosk-bravo"),
        ("registered", "Kiosk-Alpha"),
    ]


def test_a_reason_filter_searches_reasons_and_log_messages(outage):
    found = {kind for kind, _ in listed(reason="ADDED")}
    assert found == {"rule_added", "channel_added"}
    assert {kind for kind, _ in listed(reason="rule down")} == {"incident_opened", "rule_added"}


def test_a_source_filter_tells_operators_from_the_alert_rules(outage):
    assert {kind for kind, _ in listed(source="operator")} == {"rule_added", "channel_added"}
    assert {kind for kind, _ in listed(source="alerts")} == {"incident_opened"}
    assert {kind for kind, _ in listed(source="system")} == {"status"}


def test_it_lists_a_kind_it_has_never_heard_of_from_its_message_and_details(app):
    write_log("window_opened", "maintenance window for Berlin", "ops@example.com", T0,
              details={"site": "Berlin", "minutes": 30})  # fmt: skip
    db.session.commit()
    [entry] = event_log.events_screen(LogFilter(kind="window_opened")).entries
    assert (entry.text, entry.actor, entry.details) == (
        "maintenance window for Berlin", "ops@example.com", {"site": "Berlin", "minutes": 30}
    )  # fmt: skip
    assert event_log.events_screen(LogFilter(kind="no_such_kind")).entries == []


def test_a_search_for_a_wildcard_means_the_character(make_device):
    make_device("kiosk_1", now=T0)
    make_device("kiosk21", now=T0)
    assert listed(device="k%1") == []
    assert listed(device="kiosk_") == [("registered", "kiosk_1")]


def test_it_counts_up_to_the_cap_and_says_so(make_device, monkeypatch):
    for n in range(5):
        make_device(f"kiosk-{n}", now=at(n))
    monkeypatch.setattr(event_log, "COUNT_CAP", 3)
    screen = event_log.events_screen(LogFilter())
    assert (screen.total, screen.capped) == (4, True)
    monkeypatch.setattr(event_log, "COUNT_CAP", 10)
    assert event_log.events_screen(LogFilter()).total == 5


def test_a_page_past_the_end_is_the_last_page(make_device, monkeypatch):
    monkeypatch.setattr(event_log, "PER_PAGE", 2)
    for n in range(5):
        make_device(f"kiosk-{n}", now=at(n))
    screen = event_log.events_screen(LogFilter(page=999))
    assert (screen.page, screen.pages, screen.has_next) == (3, 3, False)
    assert [e.uid for e in screen.entries] == ["kiosk-0"]
    assert event_log.events_screen(LogFilter(page=1)).has_next


def test_a_reason_search_looks_only_through_the_newest_events(make_device, monkeypatch):
    for n in range(4):
        make_device(f"kiosk-{n}", now=at(n))
    monkeypatch.setattr(event_log, "REASON_SCAN_EVENTS", 2)
    assert [uid for _, uid in listed(reason="regist")] == ["kiosk-3", "kiosk-2"]


def test_the_poll_answers_only_what_came_after_the_cursor(make_device):
    make_device("kiosk-1", now=T0, site="Berlin")
    cursor = event_log.events_screen(LogFilter()).cursor
    assert event_log.new_entries(LogFilter(), cursor).entries == []
    make_device("kiosk-2", now=at(5), site="Paris")
    write_log("rule_removed", "rule down removed", "admin@example.com", at(6))
    db.session.commit()
    news = event_log.new_entries(LogFilter(), cursor)
    assert [(e.kind, e.uid) for e in news.entries] == [
        ("rule_removed", None),
        ("registered", "kiosk-2"),
    ]
    assert event_log.new_entries(LogFilter(), news.cursor).entries == []


def test_the_poll_of_a_filtered_view_moves_past_entries_of_other_views(make_device):
    cursor = event_log.latest_cursor()
    make_device("kiosk-1", now=T0, site="Berlin")
    news = event_log.new_entries(LogFilter(site="paris"), cursor)
    assert news.entries == [] and news.cursor.event_id > cursor.event_id
    make_device("kiosk-2", now=at(5), site="Paris")
    assert [e.uid for e in event_log.new_entries(LogFilter(site="paris"), news.cursor).entries] == [
        "kiosk-2"
    ]


def test_only_the_open_ended_first_page_is_live():
    assert LogFilter().live and LogFilter(site="x").live
    assert not LogFilter(page=2).live and not LogFilter(until=T0).live
    assert Cursor() == Cursor(0, 0)


def test_an_entry_naming_a_site_or_device_in_its_details_is_found_by_them(app):
    write_log("window_opened", "maintenance window", "ops@example.com", T0,
              details={"site": "Berlin Mitte", "minutes": 30})  # fmt: skip
    write_log("note", "kiosk looked at", "ops@example.com", T0, details={"uid": "Kiosk-Alpha"})
    write_log("rule_added", "rule down added", "admin@example.com", T0)
    db.session.commit()
    [window] = event_log.events_screen(LogFilter(site="MITTE")).entries
    assert (window.kind, window.site) == ("window_opened", "Berlin Mitte")
    [note] = event_log.events_screen(LogFilter(device="alpha")).entries
    assert (note.kind, note.uid) == ("note", "Kiosk-Alpha")
