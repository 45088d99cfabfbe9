"""Human-friendly reference numbers with an ISO 7064 MOD 37,36 check character (RC-2026-000123-7)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from stdnum.iso7064 import mod_37_36

PREFIX = "RC"
# ASCII digits only, and at most twelve of them: int() of a longer run is slow, or refused.
_PATTERN = re.compile(r"^([A-Z]{2,8})-?(\d{4})-?(\d{6,12})-?([0-9A-Z])$", re.ASCII)


class InvalidReference(ValueError):
    """The text is not a well-formed reference number, or its check character does not match."""


@dataclass(frozen=True)
class Reference:
    prefix: str
    year: int
    number: int

    @property
    def body(self) -> str:
        return f"{self.prefix}{self.year:04d}{self.number:06d}"

    @property
    def check(self) -> str:
        return mod_37_36.calc_check_digit(self.body)

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year:04d}-{self.number:06d}-{self.check}"


def format_reference(year: int, number: int, prefix: str = PREFIX) -> str:
    return str(Reference(prefix=prefix, year=year, number=number))


def parse_reference(text: str) -> Reference:
    """Read a reference typed by a person: case, spaces and missing dashes are forgiven, typos are not."""
    cleaned = re.sub(r"[\s_.]+", "", text or "").upper()
    match = _PATTERN.match(cleaned)
    if not match:
        raise InvalidReference(text)
    prefix, year, number, check = match.groups()
    reference = Reference(prefix=prefix, year=int(year), number=int(number))
    if reference.check != check:
        raise InvalidReference(text)
    return reference


def normalize_reference(text: str) -> str:
    return str(parse_reference(text))
