"""Property tests of reference numbers (concilia.core.references): every formatted reference reads
back to itself however loosely it is typed, and no text makes the parser raise anything but
InvalidReference (the helpdesk, the tracking pages, the API and email subjects all call it)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from concilia.core.references import (
    InvalidReference,
    Reference,
    format_reference,
    normalize_reference,
    parse_reference,
)

years = st.integers(min_value=0, max_value=9999)
numbers = st.integers(min_value=0, max_value=10**12 - 1)
prefixes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=8)


@settings(max_examples=300)
@given(years, numbers, prefixes)
def test_a_formatted_reference_reads_back_to_itself(year, number, prefix):
    text = format_reference(year, number, prefix=prefix)
    assert parse_reference(text) == Reference(prefix=prefix, year=year, number=number)
    assert normalize_reference(text) == text


@settings(max_examples=300)
@given(
    years,
    numbers,
    st.sampled_from(["-", "", " ", "_", ".", " - "]),
    st.booleans(),
    st.sampled_from(["", " ", "\t", "\n", "\u00a0"]),
)
def test_a_reference_typed_loosely_reads_back_the_same(year, number, separator, lower, padding):
    # Given a reference written with other separators, in lower case, with spaces around it
    text = format_reference(year, number)
    typed = text.replace("-", separator)
    typed = padding + (typed.lower() if lower else typed) + padding
    # When it is read, then it is the same reference
    assert normalize_reference(typed) == text


@settings(max_examples=300)
@given(years, numbers, st.data())
def test_changing_any_one_character_is_caught(year, number, data):
    text = format_reference(year, number)
    position = data.draw(st.sampled_from([i for i, ch in enumerate(text) if ch != "-"]))
    replacement = data.draw(st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    typo = text[:position] + replacement + text[position + 1 :]
    if typo != text:
        with pytest.raises(InvalidReference):
            parse_reference(typo)


@settings(max_examples=1000)
@given(st.one_of(st.text(), st.text(alphabet="RCrc0123456789-_. \t\n\x00ABXYZ", max_size=40)))
@example("")
@example("\x00")
@example("RC-2026-" + "9" * 5000 + "-0")
@example("RC-2026-" + "1" * 13 + "-0")
@example("RC-٢٠٢٦-٠٠٠١٢٣-7")  # Arabic-Indic digits
@example("ǅǅ-2026-000123-7")
@example("ß" * 4 + "-2026-000123-7")  # upper() makes "SS" of each
def test_any_text_is_a_reference_or_invalid_reference(text):
    try:
        reference = parse_reference(text)
    except InvalidReference:
        return
    # What is accepted is a canonical reference that reads back to itself
    assert parse_reference(str(reference)) == reference
    assert str(reference).isascii()


def test_nothing_typed_is_an_invalid_reference():
    with pytest.raises(InvalidReference):
        parse_reference(None)  # type: ignore[arg-type]
