"""The schedule rules at their edges: DST, midnight, holidays, closures, windows, overrides."""

from datetime import UTC, datetime, timedelta

import pytest

from fleet.schedules import Schedule, ScheduleError, WindowRule, parse_holidays_code, parse_hours

BERLIN_WEEKDAYS = {
    "timezone": "Europe/Berlin",
    "weekly": {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_it_opens_at_local_wall_time_on_both_sides_of_the_march_dst_change():
    schedule = Schedule.from_dict(BERLIN_WEEKDAYS)
    # Saturday 28 March 2026 is CET (+1): 08:00 local is 07:00 UTC.
    assert not schedule.is_open(utc(2026, 3, 28, 6, 59))
    assert schedule.is_open(utc(2026, 3, 28, 7, 0))
    # Sunday 29 March (last Sunday): CEST (+2) from 02:00, so 08:00 local is 06:00 UTC.
    assert not schedule.is_open(utc(2026, 3, 29, 5, 59))
    assert schedule.is_open(utc(2026, 3, 29, 6, 0))
    assert schedule.is_open(utc(2026, 3, 29, 17, 59))
    assert not schedule.is_open(utc(2026, 3, 29, 18, 0))


def test_it_opens_at_local_wall_time_after_the_october_dst_change():
    schedule = Schedule.from_dict(BERLIN_WEEKDAYS)
    # Sunday 25 October 2026 (last Sunday): back to CET, 08:00 local is 07:00 UTC.
    assert not schedule.is_open(utc(2026, 10, 25, 6, 30))
    assert schedule.is_open(utc(2026, 10, 25, 7, 0))
    assert schedule.next_change(utc(2026, 10, 25, 3, 0)).at == utc(2026, 10, 25, 7, 0)


def test_a_night_span_over_the_fall_back_hour_lasts_an_hour_longer():
    night = Schedule.from_dict(
        {"timezone": "Europe/Berlin", "weekly": {"sat": [["22:00", "06:00"]]}}
    )
    spans = night.open_spans(utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0))
    assert spans == [(utc(2026, 10, 24, 20, 0), utc(2026, 10, 25, 5, 0))]  # 9 hours, not 8


def test_a_span_that_crosses_midnight_belongs_to_the_day_it_starts():
    schedule = Schedule.from_dict({"timezone": "UTC", "weekly": {"fri": [["20:00", "02:00"]]}})
    friday_late, saturday_early = utc(2026, 12, 4, 23, 0), utc(2026, 12, 5, 1, 59)
    assert schedule.is_open(friday_late) and schedule.is_open(saturday_early)
    assert not schedule.is_open(utc(2026, 12, 5, 2, 0))
    assert not schedule.is_open(utc(2026, 12, 4, 1, 0))  # Thursday night: no span
    assert schedule.next_change(friday_late).at == utc(2026, 12, 5, 2, 0)


def test_several_spans_a_day_close_over_lunch():
    schedule = Schedule.from_dict(
        {"timezone": "UTC", "weekly": {"mon": [["07:00", "12:00"], ["13:00", "22:00"]]}}
    )
    monday = utc(2026, 11, 30, 12, 30)
    assert not schedule.is_open(monday)
    change = schedule.next_change(monday)
    assert change.opens and change.at == utc(2026, 11, 30, 13, 0)


def test_a_holiday_of_a_subdivision_closes_it_but_not_the_rest_of_the_country():
    # 8 March (International Women's Day) is a public holiday in Berlin only (a Sunday in 2026).
    hours = {"timezone": "Europe/Berlin", "weekly": {"sun": [["10:00", "18:00"]]}}
    berlin = Schedule.from_dict({**hours, "holidays": {"country": "DE", "subdivision": "BE"}})
    bavaria = Schedule.from_dict({**hours, "holidays": {"country": "DE", "subdivision": "BY"}})
    germany = Schedule.from_dict({**hours, "holidays": {"country": "DE"}})
    noon = utc(2026, 3, 8, 11, 0)
    assert not berlin.is_open(noon)
    assert bavaria.is_open(noon) and germany.is_open(noon)
    assert berlin.closed_day(noon.date()) == "Women's Day"


def test_a_closure_closes_whole_local_days_and_the_next_change_skips_it():
    schedule = Schedule.from_dict(
        {
            **BERLIN_WEEKDAYS,
            "closures": [{"from": "2026-12-24", "to": "2026-12-26", "note": "Christmas"}],
        }
    )
    assert not schedule.is_open(utc(2026, 12, 25, 12, 0))
    change = schedule.next_change(utc(2026, 12, 23, 20, 0))
    assert change.opens and change.at == utc(2026, 12, 27, 7, 0)


def test_no_weekly_hours_means_always_open_and_no_change_ahead():
    schedule = Schedule.from_dict({"timezone": "UTC"})
    assert schedule.is_open(utc(2026, 12, 2, 3, 0))
    assert schedule.next_change(utc(2026, 12, 2, 3, 0)) is None


def test_a_day_left_out_is_closed():
    schedule = Schedule.from_dict({"timezone": "UTC", "weekly": {"mon": [["08:00", "20:00"]]}})
    assert not schedule.is_open(utc(2026, 12, 1, 12, 0))  # a Tuesday


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "UTC", "weekly": {"mon": [["08:00", "25:00"]]}}, "weekly.mon[0][1]"),
        ({"timezone": "UTC", "weekly": {"mon": [["08:00", "08:00"]]}}, "weekly.mon[0]"),
        ({"timezone": "UTC", "weekly": {"funday": []}}, "weekly"),
        ({"timezone": "UTC", "holidays": {"country": "XX"}}, "holidays.country"),
        (
            {"timezone": "UTC", "holidays": {"country": "DE", "subdivision": "ZZ"}},
            "holidays.subdivision",
        ),
        (
            {"timezone": "UTC", "closures": [{"from": "2026-12-26", "to": "2026-12-24"}]},
            "closures[0].to",
        ),
    ],
)
def test_bad_input_names_the_field(body, field):
    with pytest.raises(ScheduleError) as raised:
        Schedule.from_dict(body)
    assert raised.value.field == field


def test_the_command_line_hours_read_as_the_weekly_form():
    weekly = parse_hours(["mon-fri 08:00-12:00,13:00-20:00", "sat 10:00-14:00"])
    assert weekly["wed"] == [["08:00", "12:00"], ["13:00", "20:00"]]
    assert weekly["sat"] == [["10:00", "14:00"]] and "sun" not in weekly
    assert parse_hours(["fri-mon 10:00-11:00"]).keys() == {"fri", "sat", "sun", "mon"}
    assert str(parse_holidays_code("DE-BE")) == "DE-BE"


def test_a_window_that_starts_while_devices_are_offline_is_on_from_its_start():
    start = utc(2026, 12, 2, 2, 0)
    rule = WindowRule(starts_at=start, ends_at=start + timedelta(hours=2)).validate()
    assert not rule.is_active(start - timedelta(seconds=1))
    assert rule.is_active(start) and rule.is_active(start + timedelta(minutes=119))
    assert not rule.is_active(start + timedelta(hours=2))


def test_a_cron_window_recurs_in_its_time_zone_for_its_duration():
    rule = WindowRule(cron="0 2 * * sun", duration_minutes=90, timezone="Europe/Berlin").validate()
    # Sunday 6 December 2026, 02:00 CET = 01:00 UTC.
    assert rule.is_active(utc(2026, 12, 6, 1, 0))
    assert rule.is_active(utc(2026, 12, 6, 2, 29))
    assert not rule.is_active(utc(2026, 12, 6, 2, 30))
    assert not rule.is_active(utc(2026, 12, 7, 1, 0))
    assert rule.next_start(utc(2026, 12, 6, 3, 0)) == utc(2026, 12, 13, 1, 0)


def test_an_rrule_window_recurs():
    rule = WindowRule(
        rrule="FREQ=WEEKLY;BYDAY=TU;BYHOUR=3;BYMINUTE=0",
        duration_minutes=30,
        starts_at=utc(2026, 11, 1),
        timezone="UTC",
    ).validate()
    assert rule.is_active(utc(2026, 12, 1, 3, 10))
    assert not rule.is_active(utc(2026, 12, 1, 3, 30))


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (WindowRule(cron="every sunday", duration_minutes=10), "cron"),
        (WindowRule(cron="0 2 * * sun"), "duration_minutes"),
        (WindowRule(starts_at=utc(2026, 1, 1)), "ends_at"),
        (WindowRule(starts_at=utc(2026, 1, 2), ends_at=utc(2026, 1, 1)), "ends_at"),
        (WindowRule(rrule="FREQ=SOMETIMES", duration_minutes=5), "rrule"),
    ],
)
def test_a_bad_window_names_the_field(rule, field):
    with pytest.raises(ScheduleError) as raised:
        rule.validate()
    assert raised.value.field == field
