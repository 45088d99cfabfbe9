"""Business calendars: working days and hours in a time zone, with their own holidays.

Dates used: 2026-11-20 is a Friday; 2026-12-08 a Tuesday; 2026-12-25 a Friday. Madrid changes
to winter time on Sunday 2026-10-25 (UTC+2 → UTC+1) and to summer time on Sunday 2027-03-28.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import translation

from concilia.core.calendar import WorkingCalendar, default_calendar
from concilia.core.memo import forget_all
from concilia.core.models import BusinessCalendar, Holiday

pytestmark = pytest.mark.django_db

MADRID = ZoneInfo("Europe/Madrid")
HOUR = 3600


def madrid(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MADRID)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def office(name: str = "Oficina Madrid", workdays: str = "12345", **extra) -> BusinessCalendar:
    calendar = BusinessCalendar(
        name=name,
        time_zone="Europe/Madrid",
        workdays=workdays,
        opens=dt.time(9),
        closes=dt.time(18),
        **extra,
    )
    calendar.full_clean()
    calendar.save()
    return calendar


@pytest.fixture
def hours() -> WorkingCalendar:
    """Monday to Friday, 09:00 to 18:00 in Madrid."""
    return office().working()


# -- deadlines ------------------------------------------------------------------------------


def test_deadline_is_the_closing_time_of_the_business_day(hours):
    friday_afternoon = madrid(2026, 11, 20, 16, 0)
    assert hours.deadline(friday_afternoon, 1) == utc(2026, 11, 23, 17, 0)  # Monday 18:00
    assert hours.deadline(friday_afternoon, 5) == utc(2026, 11, 27, 17, 0)  # Friday 18:00
    assert hours.deadline(friday_afternoon, 6) == utc(2026, 11, 30, 17, 0)  # Monday 18:00


def test_deadline_counts_from_the_next_business_day_whatever_the_hour(hours):
    # After closing on Friday, on Saturday, or on Sunday night: Monday is the first day.
    for received in (
        madrid(2026, 11, 20, 20, 30),
        madrid(2026, 11, 21, 10, 0),
        utc(2026, 11, 22, 22, 59),
    ):
        assert hours.deadline(received, 1) == utc(2026, 11, 23, 17, 0)
    # Received before opening on Monday: still Tuesday.
    assert hours.deadline(madrid(2026, 11, 23, 7, 0), 1) == utc(2026, 11, 24, 17, 0)


def test_deadline_skips_holidays_of_the_calendar_and_of_every_calendar():
    calendar = office()
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada", calendar=calendar)
    Holiday.objects.create(date=dt.date(2026, 12, 25), name="Navidad")
    hours = calendar.working()
    # Monday 7th: Tuesday 8th closed, Wednesday 9th the first day, Thursday 10th the second.
    assert hours.deadline(madrid(2026, 12, 7, 10, 0), 2) == utc(2026, 12, 10, 17, 0)
    # Wednesday 23rd: 24th, (25th, weekend), 28th, 29th.
    assert hours.deadline(madrid(2026, 12, 23, 12, 0), 3) == utc(2026, 12, 29, 17, 0)


def test_holidays_of_one_calendar_do_not_close_another(settings):
    settings.TIME_ZONE = "Europe/Madrid"
    madrid_office = office("Oficina Madrid")
    barcelona_office = office("Oficina Barcelona")
    Holiday.objects.create(date=dt.date(2026, 12, 7), name="Día de la empresa")  # everywhere
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada", calendar=madrid_office)
    Holiday.objects.create(date=dt.date(2026, 12, 9), name="Local", calendar=barcelona_office)
    friday = madrid(2026, 12, 4, 12, 0)

    # Madrid: Monday (everywhere) and Tuesday (its own) closed, so Wednesday.
    assert madrid_office.working().deadline(friday, 1) == utc(2026, 12, 9, 17, 0)
    # Barcelona: only Monday closed, so Tuesday; its Wednesday holiday makes day 2 Thursday.
    assert barcelona_office.working().deadline(friday, 1) == utc(2026, 12, 8, 17, 0)
    assert barcelona_office.working().deadline(friday, 2) == utc(2026, 12, 10, 17, 0)
    # Without a calendar only the holidays of every calendar count (and the whole day).
    assert default_calendar().deadline(friday, 1) == utc(2026, 12, 8, 22, 59, 59)
    assert default_calendar().deadline(friday, 2) == utc(2026, 12, 9, 22, 59, 59)


def test_a_holiday_added_later_is_seen_once_remembered_holidays_are_forgotten(hours):
    calendar = BusinessCalendar.objects.get()
    monday = madrid(2026, 12, 7, 10, 0)
    assert hours.deadline(monday, 1) == utc(2026, 12, 8, 17, 0)
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada", calendar=calendar)
    forget_all()  # what the admin does after saving a holiday
    assert hours.deadline(monday, 1) == utc(2026, 12, 9, 17, 0)


def test_deadline_of_a_calendar_with_one_working_day_a_week_sees_far_holidays():
    saturdays = office("Sábados", workdays="6")
    Holiday.objects.create(date=dt.date(2027, 1, 16), name="Cerrado", calendar=saturdays)
    # Ten Saturdays after Monday 2026-11-23, the 16th of January skipped: 6 February 2027.
    assert saturdays.working().deadline(madrid(2026, 11, 23, 10, 0), 10) == utc(2027, 2, 6, 17, 0)


# -- business seconds -----------------------------------------------------------------------


def test_seconds_between_over_a_weekend(hours):
    # Friday 17:00 to Monday 10:00: one hour on Friday, one on Monday.
    assert hours.seconds_between(madrid(2026, 11, 20, 17, 0), madrid(2026, 11, 23, 10, 0)) == (
        2 * HOUR
    )
    # A weekend alone is no business time.
    assert hours.seconds_between(madrid(2026, 11, 21, 8, 0), madrid(2026, 11, 22, 20, 0)) == 0


def test_seconds_between_counts_only_opening_hours(hours):
    tuesday = (2026, 11, 24)
    # Before opening to after closing: the nine opening hours.
    assert hours.seconds_between(madrid(*tuesday, 7, 0), madrid(*tuesday, 20, 0)) == 9 * HOUR
    # Noon to 11:00 the next day: six hours, then two.
    assert hours.seconds_between(madrid(*tuesday, 12, 0), madrid(2026, 11, 25, 11, 0)) == (8 * HOUR)
    # 17:30 to 09:30 the next morning: the night does not count.
    assert hours.seconds_between(madrid(*tuesday, 17, 30), madrid(2026, 11, 25, 9, 30)) == HOUR
    # Within the day, to the second; and nothing when the end is not after the start.
    assert hours.seconds_between(madrid(*tuesday, 10, 0), madrid(*tuesday, 10, 0, 30)) == 30
    assert hours.seconds_between(madrid(*tuesday, 12, 0), madrid(*tuesday, 11, 0)) == 0


def test_seconds_between_skips_holidays():
    calendar = office()
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada", calendar=calendar)
    hours = calendar.working()
    assert hours.seconds_between(madrid(2026, 12, 7, 9, 0), madrid(2026, 12, 9, 9, 0)) == (9 * HOUR)


# -- adding business time -------------------------------------------------------------------


def test_add_seconds_within_the_day_and_up_to_closing(hours):
    assert hours.add_seconds(madrid(2026, 11, 24, 10, 0), 2 * HOUR) == utc(2026, 11, 24, 11, 0)
    # Exactly the rest of the day ends at closing time, not the next morning.
    assert hours.add_seconds(madrid(2026, 11, 24, 9, 0), 9 * HOUR) == utc(2026, 11, 24, 17, 0)


def test_add_seconds_crosses_a_night(hours):
    # Tuesday 17:00 + 2 h: one hour on Tuesday, then Wednesday 10:00.
    assert hours.add_seconds(madrid(2026, 11, 24, 17, 0), 2 * HOUR) == utc(2026, 11, 25, 9, 0)


def test_add_seconds_crosses_a_weekend(hours):
    # Friday 17:30 + 1 h: half an hour on Friday, then Monday 09:30.
    assert hours.add_seconds(madrid(2026, 11, 27, 17, 30), HOUR) == utc(2026, 11, 30, 8, 30)
    # Starting on Saturday: the clock starts on Monday at opening.
    assert hours.add_seconds(madrid(2026, 11, 28, 12, 0), HOUR) == utc(2026, 11, 30, 9, 0)


def test_add_seconds_crosses_a_holiday():
    calendar = office()
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada", calendar=calendar)
    hours = calendar.working()
    # Monday 17:00 + 2 h: one hour on Monday, Tuesday closed, Wednesday 10:00.
    assert hours.add_seconds(madrid(2026, 12, 7, 17, 0), 2 * HOUR) == utc(2026, 12, 9, 9, 0)
    # A weekend and a holiday together: Friday 4th 17:00 + 11 h → Wednesday 9th 10:00.
    assert hours.add_seconds(madrid(2026, 12, 4, 17, 0), 11 * HOUR) == utc(2026, 12, 9, 9, 0)


def test_add_seconds_and_seconds_between_agree(hours):
    start = madrid(2026, 11, 20, 15, 45)
    for seconds in (1, HOUR, 9 * HOUR, 20 * HOUR + 17, 100 * HOUR):
        assert hours.seconds_between(start, hours.add_seconds(start, seconds)) == seconds


# -- daylight saving time in Madrid ---------------------------------------------------------


def test_opening_hours_follow_local_time_across_the_autumn_change(hours):
    # Friday before the change closes at 16:00 UTC, Monday after it at 17:00 UTC.
    friday = madrid(2026, 10, 23, 10, 0)
    assert hours.deadline(friday, 0) == utc(2026, 10, 23, 16, 0)
    assert hours.deadline(friday, 1) == utc(2026, 10, 26, 17, 0)
    # Friday 17:00 (summer time) + 2 h: Monday 10:00 winter time.
    assert hours.add_seconds(madrid(2026, 10, 23, 17, 0), 2 * HOUR) == utc(2026, 10, 26, 9, 0)
    assert hours.seconds_between(madrid(2026, 10, 23, 17, 0), madrid(2026, 10, 26, 10, 0)) == (
        2 * HOUR
    )


def test_opening_hours_follow_local_time_across_the_spring_change(hours):
    friday = madrid(2027, 3, 26, 10, 0)
    assert hours.deadline(friday, 0) == utc(2027, 3, 26, 17, 0)
    assert hours.deadline(friday, 1) == utc(2027, 3, 29, 16, 0)


def test_whole_day_calendar_counts_the_real_length_of_change_days():
    every_day = WorkingCalendar(time_zone="Europe/Madrid", workdays=frozenset(range(7)))
    # Sunday 25 October 2026 has 25 hours, Sunday 28 March 2027 has 23.
    assert every_day.seconds_between(madrid(2026, 10, 25, 0, 0), madrid(2026, 10, 26, 0, 0)) == (
        25 * HOUR
    )
    assert every_day.seconds_between(madrid(2027, 3, 28, 0, 0), madrid(2027, 3, 29, 0, 0)) == (
        23 * HOUR
    )
    # 48 business hours from Saturday noon (summer time) are 48 real hours: Monday 11:00 winter.
    assert every_day.add_seconds(madrid(2026, 10, 24, 12, 0), 48 * HOUR) == madrid(
        2026, 10, 26, 11, 0
    )
    # The end of the day is 23:59:59 local time, whichever offset it has.
    assert every_day.deadline(madrid(2026, 10, 24, 12, 0), 1) == utc(2026, 10, 25, 22, 59, 59)
    assert every_day.deadline(madrid(2027, 3, 27, 12, 0), 1) == utc(2027, 3, 28, 21, 59, 59)


def test_opening_hours_on_a_change_day_are_nine_local_hours():
    every_day = office("Siempre abierto", workdays="1234567").working()
    sunday_autumn = (2026, 10, 25)
    assert every_day.seconds_between(
        madrid(*sunday_autumn, 0, 0), madrid(*sunday_autumn, 23, 0)
    ) == (9 * HOUR)
    assert every_day.deadline(madrid(2026, 10, 24, 10, 0), 1) == utc(*sunday_autumn, 17, 0)
    assert every_day.deadline(madrid(2027, 3, 27, 10, 0), 1) == utc(2027, 3, 28, 16, 0)


# -- a calendar that works on Saturdays ------------------------------------------------------


def test_saturday_as_a_working_day():
    shop = office("Tienda", workdays="123456").working()
    assert shop.workdays == frozenset({0, 1, 2, 3, 4, 5})
    friday = madrid(2026, 11, 20, 10, 0)
    assert shop.deadline(friday, 1) == utc(2026, 11, 21, 17, 0)  # Saturday 18:00
    assert shop.deadline(friday, 2) == utc(2026, 11, 23, 17, 0)  # Sunday closed: Monday
    # Friday 17:00 to Monday 10:00: one hour, Saturday's nine, one more.
    assert shop.seconds_between(madrid(2026, 11, 20, 17, 0), madrid(2026, 11, 23, 10, 0)) == (
        11 * HOUR
    )
    assert shop.add_seconds(madrid(2026, 11, 20, 17, 0), 2 * HOUR) == utc(2026, 11, 21, 9, 0)
    assert shop.add_seconds(madrid(2026, 11, 21, 17, 0), 2 * HOUR) == utc(2026, 11, 23, 9, 0)


def test_sunday_only_is_iso_day_seven():
    sundays = office("Domingos", workdays="7").working()
    assert sundays.workdays == frozenset({6})
    assert sundays.deadline(madrid(2026, 11, 20, 10, 0), 1) == utc(2026, 11, 22, 17, 0)


# -- validation -----------------------------------------------------------------------------


def _errors(calendar: BusinessCalendar) -> dict[str, list[str]]:
    with translation.override("en"), pytest.raises(ValidationError) as caught:
        calendar.full_clean()
    with translation.override("en"):
        return caught.value.message_dict


def _calendar(**fields) -> BusinessCalendar:
    values = {
        "name": "Oficina",
        "time_zone": "Europe/Madrid",
        "workdays": "12345",
        "opens": dt.time(9),
        "closes": dt.time(18),
    }
    values.update(fields)
    return BusinessCalendar(**values)


def test_a_valid_calendar_passes_validation():
    _calendar().full_clean()
    _calendar(opens=None, closes=None, workdays="1234567", time_zone="America/Bogota").full_clean()


@pytest.mark.parametrize("time_zone", ["Europe/Atlantis", "CET+1", "madrid"])
def test_unknown_time_zone_is_refused(time_zone):
    assert _errors(_calendar(time_zone=time_zone)) == {"time_zone": ["Unknown time zone."]}


def test_time_zone_is_required():
    assert list(_errors(_calendar(time_zone=""))) == ["time_zone"]


@pytest.mark.parametrize(("opens", "closes"), [(dt.time(18), dt.time(9)), (dt.time(9), dt.time(9))])
def test_closing_must_come_after_opening(opens, closes):
    errors = _errors(_calendar(opens=opens, closes=closes))
    assert errors == {"closes": ["The closing time must be after the opening time."]}


@pytest.mark.parametrize(
    ("opens", "closes", "missing"),
    [(dt.time(9), None, "closes"), (None, dt.time(18), "opens")],
)
def test_both_hours_or_neither(opens, closes, missing):
    errors = _errors(_calendar(opens=opens, closes=closes))
    # On the missing field, and only once (not again as the database constraint's message).
    assert errors == {missing: ["Give both the opening and the closing time, or neither."]}


def test_every_mistake_is_reported_at_once():
    errors = _errors(_calendar(time_zone="Mars/Olympus", opens=dt.time(18), closes=dt.time(9)))
    assert errors == {
        "time_zone": ["Unknown time zone."],
        "closes": ["The closing time must be after the opening time."],
    }


@pytest.mark.parametrize("workdays", ["", "0123", "12348", "11234", "L-V", "1 2 3"])
def test_bad_workdays_are_refused(workdays):
    assert "workdays" in _errors(_calendar(workdays=workdays))


def test_the_database_refuses_hours_out_of_order_too():
    with pytest.raises(IntegrityError), transaction.atomic():
        BusinessCalendar.objects.create(name="Al revés", opens=dt.time(18), closes=dt.time(9))
