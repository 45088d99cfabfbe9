"""Property tests of the readers of other systems' amounts and dates (concilia.integrations.mapping):
whatever a shop or CRM sends in a field, the reader returns a finite Decimal or a date, or says
the field does not fit (FieldError, which the connectors turn into "unavailable"); what it reads
is what was written (amounts in units and in cents, ISO dates and date-times, Unix times)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import example, given, settings
from hypothesis import strategies as st

from concilia.integrations import mapping

# Anything a JSON answer can hold in a field, and the numbers Python's JSON readers make of it.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities too: json.loads reads "NaN" and "Infinity"
    st.decimals(),  # parse_float=Decimal, NaN and infinities included
    st.text(),
    # Number- and date-like text, with digits str.isdigit knows and float() does not (², ١٢).
    st.text(alphabet="0123456789+-.eE_ :TZ\u00b2\u0661\u0662", max_size=30),
)
json_values = st.one_of(
    json_scalars,
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
)


@settings(max_examples=500, deadline=None)
@given(json_values, st.booleans())
@example("1e999999999", True)  # Decimal overflow when divided into units
@example("sNaN", False)
@example(Decimal("Infinity"), False)
def test_any_value_is_an_amount_or_a_field_error(value, minor_units):
    try:
        amount = mapping.money(value, minor_units=minor_units)
    except mapping.FieldError:
        return
    assert isinstance(amount, Decimal)
    assert amount.is_finite()


amounts = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False
)


@settings(max_examples=300, deadline=None)
@given(amounts)
def test_an_amount_written_as_text_or_number_reads_back_the_same(amount):
    assert mapping.money(str(amount)) == amount
    assert mapping.money(f" {amount} ") == amount  # padding, as some exports have
    assert mapping.money(amount) == amount  # already a Decimal (parse_float=Decimal)
    assert mapping.money(float(amount)) == Decimal(repr(float(amount)))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(10**14), max_value=10**14))
def test_an_amount_in_cents_reads_back_in_units(cents):
    assert mapping.money(cents, minor_units=True) * 100 == cents
    assert mapping.money(str(cents), minor_units=True) == Decimal(cents) / 100


@settings(max_examples=500, deadline=None)
@given(json_values)
@example("99999999999999")  # a Unix time past year 9999
@example(1e20)
@example(float("nan"))
@example("²")  # a digit to str.isdigit, not to float()
@example(10**400)
@example("9999-12-31T23:59:59Z")  # the next day in Madrid does not exist
@example("0001-01-01T00:00:00+14:00")
def test_any_value_is_a_date_or_a_field_error(value):
    try:
        day = mapping.date(value)
    except mapping.FieldError:
        return
    assert type(day) is dt.date


days = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31))
zones = st.sampled_from(["UTC", "Europe/Madrid", "America/Mexico_City", "Pacific/Kiritimati"]).map(
    zoneinfo.ZoneInfo
)
# Hypothesis takes naive bounds and puts each moment in a zone.
FIRST, LAST = dt.datetime(1900, 1, 2), dt.datetime(2200, 12, 30)  # noqa: DTZ001


@settings(max_examples=200, deadline=None)
@given(days)
def test_an_iso_date_reads_back_the_same_day(day):
    assert mapping.date(day.isoformat()) == day
    assert mapping.optional_date(day.isoformat()) == day


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=FIRST, max_value=LAST, timezones=zones))
def test_an_iso_date_time_is_the_local_day_of_that_moment(aware):
    assert mapping.date(aware.isoformat()) == timezone.localdate(aware)
    utc = aware.astimezone(dt.UTC)
    written = utc.replace(tzinfo=None).isoformat()
    assert mapping.date(written + "Z") == timezone.localdate(utc)
    assert mapping.date(written) == timezone.localdate(utc)  # naive ones are UTC


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=7_258_118_400))  # 1970 to 2200
def test_a_unix_time_is_the_local_day_of_that_moment(seconds):
    expected = timezone.localdate(dt.datetime.fromtimestamp(seconds, tz=dt.UTC))
    assert mapping.date(seconds) == expected
    assert mapping.date(str(seconds)) == expected
    assert mapping.date(float(seconds)) == expected


@pytest.mark.parametrize("value", [None, ""])
def test_no_value_is_no_date_where_the_date_is_optional(value):
    assert mapping.optional_date(value) is None
