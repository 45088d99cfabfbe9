"""Reference numbers: format, check character, and uniqueness under concurrent writers."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from concilia.core.models import ReferenceSequence
from concilia.core.references import (
    InvalidReference,
    format_reference,
    normalize_reference,
    parse_reference,
)

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def test_reference_has_year_number_and_check_character():
    reference = format_reference(2026, 123)
    assert reference.startswith("RC-2026-000123-")
    assert len(reference) == len("RC-2026-000123-X")
    assert parse_reference(reference).number == 123


def test_people_may_type_it_loosely():
    reference = format_reference(2026, 4567)
    loose = reference.lower().replace("-", " ")
    assert normalize_reference(loose) == reference
    assert normalize_reference(reference.replace("-", "")) == reference


@pytest.mark.parametrize("number", [1, 123, 99999, 123456])
def test_every_single_character_typo_is_caught(number):
    reference = format_reference(2026, number)
    for position, original in enumerate(reference):
        if original == "-" or position < 2:
            continue
        for replacement in ALPHABET:
            if replacement == original:
                continue
            typo = reference[:position] + replacement + reference[position + 1 :]
            with pytest.raises(InvalidReference):
                parse_reference(typo)


def test_swapped_neighbouring_digits_are_caught():
    reference = format_reference(2026, 123457)
    digits = reference.replace("-", "")
    for i in range(2, len(digits) - 1):
        if digits[i] == digits[i + 1]:
            continue
        swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
        with pytest.raises(InvalidReference):
            parse_reference(swapped)


@pytest.mark.parametrize("text", ["", "RC-2026", "hello", "RC-20X6-000001-A", "RC-2026-000001-!"])
def test_malformed_references_are_refused(text):
    with pytest.raises(InvalidReference):
        parse_reference(text)


@pytest.mark.django_db
def test_numbers_are_sequential_per_year():
    first = ReferenceSequence.next_number("RC", 2026)
    assert ReferenceSequence.next_number("RC", 2026) == first + 1
    assert ReferenceSequence.next_number("RC", 2027) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_get_the_same_number():
    taken: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        from django.db import transaction

        try:
            for _ in range(25):
                with transaction.atomic():
                    number = ReferenceSequence.next_number("RC", 2030)
                with lock:
                    taken.append(number)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == list(range(1, 101))
