"""Property tests of the amount a customer types in a counter-proposal
(concilia.resolution.actions.parse_amount): any text is a positive sum in cents or InvalidAnswer,
never another error; every way of writing a sum (Spanish and English grouping, decimal comma or
point, a currency before or after) reads back as that sum."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from concilia.resolution.actions import InvalidAnswer, parse_amount

CENT = Decimal("0.01")
LARGEST = Decimal("9999999999")

_PIECES = ["1", "12", "123", "1234", "0", "00", ".", ",", " ", "€", "$", "£", "EUR", "usd", "-"]
typed = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(_PIECES), max_size=12).map("".join),
    st.text(alphabet="0123456789.,\u0661\u0662\U0001d7cf ", max_size=20),  # other digits too
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(typed, st.decimals()))
@example("1.234,50 €")
@example("0,00")
@example("9999999999,99")
@example("\u0661\u0662")  # Arabic-Indic digits
@example(Decimal("sNaN"))
@example(Decimal("1E-1000000"))
def test_any_text_is_a_positive_sum_in_cents_or_an_invalid_answer(text):
    try:
        value = parse_amount(text)
    except InvalidAnswer as refusal:
        assert str(refusal)  # a message the customer reads
        return
    assert isinstance(value, Decimal)
    assert CENT <= value <= LARGEST
    assert value == value.quantize(CENT)


amounts = st.decimals(min_value=CENT, max_value=LARGEST, places=2)
currencies = st.sampled_from(["", "€", "EUR", "$", "USD", "£", "GBP", "eur"])


def spanish(amount: Decimal, grouped: bool) -> str:
    english = f"{amount:,.2f}" if grouped else f"{amount:.2f}"
    return english.translate(str.maketrans(",.", ".,"))


@settings(max_examples=300, deadline=None)
@given(amounts, st.booleans(), currencies, st.booleans(), st.booleans())
@example(Decimal("1234.50"), True, "€", False, False)
@example(Decimal("45.00"), False, "", False, False)
def test_a_sum_written_as_people_write_it_reads_back(amount, grouped, currency, before, spaced):
    english = f"{amount:,.2f}" if grouped else f"{amount:.2f}"
    space = " " if spaced else ""
    for number in (english, spanish(amount, grouped)):
        written = f"{currency}{space}{number}" if before else f"{number}{space}{currency}"
        assert parse_amount(written) == amount, written


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=int(LARGEST)))
def test_a_whole_sum_reads_back_with_or_without_grouping(units):
    assert parse_amount(str(units)) == units
    assert parse_amount(f"{units:,}") == units  # 1,234
    assert parse_amount(f"{units:,}".replace(",", ".")) == units  # 1.234


@settings(max_examples=100, deadline=None)
@given(amounts)
def test_a_decimal_sum_is_taken_as_it_is(amount):
    assert parse_amount(amount) == amount
