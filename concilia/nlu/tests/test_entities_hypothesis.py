"""More property tests of the entity rules (concilia.nlu.entities), beside those in
test_entities.py: any day may be today (month ends, leap years, New Year), English messages,
amounts in every currency and grouping, and numbers parsed from any run of digits and separators."""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from concilia.nlu.entities import extract, parse_number
from concilia.nlu.types import Money

todays = st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(2099, 12, 31))
languages = st.sampled_from(["es", "en"])


def dates_in(text: str, language: str, today: dt.date) -> list[dt.date]:
    return [e.value for e in extract(text, language=language, today=today) if e.kind == "date"]


# --- any text, any day ---------------------------------------------------------------------------

# Words that start the date, amount and order rules, mixed with digits and separators.
_PIECES = [
    "hace", "ago", "days", "días", "meses", "months", "weeks", "semanas", "el", "pasado", "last",
    "lunes", "sunday", "de", "of", "febrero", "february", "29", "31", "30", "1", "12", "/", "-",
    ".", ",", " ", "€", "$", "£", "eur", "usd", "pedido", "order", "#", "cobraron", "paid",
    "ayer", "yesterday", "mes pasado", "last month", "2024", "1900", "0000", "99", "000",
]  # fmt: skip
sentences = st.lists(st.sampled_from(_PIECES), max_size=25).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(sentences, st.text(max_size=120)), languages, todays)
@example("el 29 de febrero", "es", dt.date(2025, 3, 1))
@example("hace 1 mes", "es", dt.date(2026, 3, 31))
@example("last month", "en", dt.date(2024, 3, 31))
@example("hace 999 meses", "es", dt.date(1901, 1, 1))
@example("31/12", "es", dt.date(2026, 1, 1))
def test_any_message_on_any_day_never_raises_and_spans_never_overlap(text, language, today):
    entities = extract(text, language=language, today=today)
    for before, after in itertools.pairwise(entities):
        assert before.end <= after.start
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text


# --- dates ---------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(todays, st.integers(min_value=1, max_value=31), st.integers(min_value=1, max_value=12))
def test_a_date_without_a_year_is_never_far_ahead_and_keeps_its_day_and_month(today, day, month):
    # Given "el <day>/<month>" written without a year on any day
    found = dates_in(f"llegó el {day}/{month} por la tarde", "es", today)
    if found == []:
        # Then only a day that no year has is not a date (31/4; 29/2 always has a leap year)
        assert day > calendar.monthrange(2024, month)[1]
        return
    # Then it is that day and month, at most a month ahead of today and at most four years back
    [value] = found
    assert (value.day, value.month) == (day, month)
    assert value - today <= dt.timedelta(days=31)
    assert today - value <= dt.timedelta(days=4 * 366 + 31)


@settings(max_examples=200, deadline=None)
@given(todays, st.integers(min_value=0, max_value=120), languages)
def test_months_ago_is_that_many_calendar_months_back_on_any_day(today, months, language):
    text = f"hace {months} meses" if language == "es" else f"{months} months ago"
    [value] = dates_in(text, language, today)
    # The same day of the month where the month has it, else its last day (31 March → 28 February)
    assert (today.year * 12 + today.month) - (value.year * 12 + value.month) == months
    assert value.day == min(today.day, calendar.monthrange(value.year, value.month)[1])


@settings(max_examples=200, deadline=None)
@given(
    todays,
    st.sampled_from(
        [
            ("el lunes pasado", "es", 0),
            ("el pasado miércoles", "es", 2),
            ("el domingo", "es", 6),
            ("last friday", "en", 4),
            ("on saturday", "en", 5),
            ("this past tuesday", "en", 1),
        ]
    ),
)
def test_a_past_weekday_is_the_last_one_before_today(today, case):
    text, language, weekday = case
    [value] = dates_in(
        f"it broke {text}" if language == "en" else f"se rompió {text}", language, today
    )
    assert value.weekday() == weekday
    assert dt.timedelta(days=1) <= today - value <= dt.timedelta(days=7)


# --- amounts -------------------------------------------------------------------------------------

_CURRENCIES = [
    ("{} €", "EUR"),
    ("€{}", "EUR"),
    ("{} euros", "EUR"),
    ("EUR {}", "EUR"),
    ("${}", "USD"),
    ("US${}", "USD"),
    ("{} dólares", "USD"),
    ("{} USD", "USD"),
    ("£{}", "GBP"),
    ("{} libras", "GBP"),
    ("{} pounds", "GBP"),
    ("GBP {}", "GBP"),
]


def written(amount: Decimal, thousands: str, decimal: str) -> str:
    """The amount as a person writes it: grouped thousands, two decimals unless whole."""
    whole, _sep, cents = f"{amount:.2f}".partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    text = thousands.join([whole, *groups])
    return text if cents == "00" and thousands not in (".", ",") else f"{text}{decimal}{cents}"


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999.99"), places=2),
    st.sampled_from(_CURRENCIES),
    st.sampled_from([(".", ","), (",", "."), ("\u00a0", ","), ("\u202f", "."), (" ", ",")]),
    languages,
)
def test_an_amount_in_any_currency_and_grouping_round_trips(amount, currency, separators, language):
    # Given an amount in euros, dollars or pounds, grouped the Spanish, English or French way
    pattern, code = currency
    money = pattern.format(written(amount, *separators))
    # When it is read inside a sentence
    found = [
        (e.kind, e.text, e.value)
        for e in extract(f"me cobraron {money} de más", language=language, today=dt.date.today())  # noqa: DTZ011
    ]
    # Then the same Decimal comes back in its currency
    assert found == [("amount", money, Money(amount, code))]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789.,\u00a0\u202f -+eE_", max_size=30))
@example("1e999999999")
@example("NaN")
@example("")
@example(".")
def test_parse_number_gives_a_finite_decimal_or_nothing(raw):
    value = parse_number(raw)
    assert value is None or (isinstance(value, Decimal) and value.is_finite() and value >= 0)
    if set(raw) <= set("0123456789"):
        assert value == (Decimal(raw) if raw else None)
