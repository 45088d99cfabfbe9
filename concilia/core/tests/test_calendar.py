"""Business-day deadlines skip weekends and holidays."""

import datetime as dt

import pytest

from concilia.core.calendar import add_business_days, business_deadline
from concilia.core.models import Holiday
from concilia.core.throttling import parse_rate


def test_weekends_do_not_count():
    friday = dt.date(2026, 11, 20)
    assert add_business_days(friday, 1) == dt.date(2026, 11, 23)  # Monday
    assert add_business_days(friday, 5) == dt.date(2026, 11, 27)


def test_holidays_do_not_count():
    monday = dt.date(2026, 12, 7)
    assert add_business_days(monday, 1, holidays=[dt.date(2026, 12, 8)]) == dt.date(2026, 12, 9)


@pytest.mark.django_db
def test_deadline_is_end_of_local_business_day_and_uses_holiday_table(settings):
    settings.TIME_ZONE = "Europe/Madrid"
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada Concepción")
    received = dt.datetime(2026, 12, 4, 17, 0, tzinfo=dt.UTC)  # Friday
    deadline = business_deadline(received, 2)
    # Monday 7th counts, Tuesday 8th is a holiday, Wednesday 9th is the second day.
    assert deadline == dt.datetime(2026, 12, 9, 22, 59, 59, tzinfo=dt.UTC)


def test_rates_parse():
    assert parse_rate("20/hour") == (20, 3600)
    assert parse_rate("5/10m") == (5, 600)
    assert parse_rate("") is None
    with pytest.raises(ValueError):
        parse_rate("5/fortnight")
