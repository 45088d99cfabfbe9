"""Order and tracking numbers, amounts, emails, phones and dates found in one chat message.

Dates are hand-written bilingual rules, not dateparser: measured on chat messages, dateparser's
`search_dates` took 2-170 ms per message (budget: well under 5 ms for the whole NLU) and misread
numbers ("the order is 4471" → year 4471; "pedido 4471 ayer" → one date spanning the order
number). The rules here cover the forms customers write (day-first numeric, ISO, "3 de marzo",
"March 3, 2026", "hace 3 días", "last Tuesday"...) in microseconds and never claim a bare number.
Phones use `phonenumbers` (Google's libphonenumber metadata: validity and E.164 for every
country; default region ES). Everything else is regular expressions.

Choices worth knowing: UPU S10 numbers ("RR123456785ES") need a valid check digit unless a
tracking word is near; UPS "1Z" numbers are taken on their shape (the check digit is not
verified); amounts read the last separator followed by one or two digits as the decimal one, in
either language; numeric dates are day-first; a date without a year is the most recent one
(up to a month ahead is kept in this year); "la semana pasada"/"last week" is seven days ago and
"el mes pasado"/"last month" the same day a month ago; a bare weekday ("el martes", "on Monday")
is the most recent past one, one to seven days back. `language` is accepted for the contract but
both languages' rules always run, since customers mix them.

Each extractor proposes candidates with a priority; the most specific kinds (email, tracking,
order) claim their span first and later candidates that overlap a claimed span are dropped, so
an order number is never also an amount, a phone or a date.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import phonenumbers

from concilia.nlu.lexicon import fold
from concilia.nlu.types import Entity, EntityKind, Money

logger = logging.getLogger(__name__)


class _Candidate(NamedTuple):
    priority: int  # lower claims its span first
    kind: EntityKind
    start: int
    end: int
    value: str | dt.date | Money


def extract(text: str, *, language: str, today: dt.date) -> list[Entity]:
    """Every entity in `text`, spans never overlapping, sorted by start; never raises."""
    if not isinstance(text, str) or not text.strip():
        return []
    folded = fold(text)
    candidates: list[_Candidate] = []
    for extractor in _EXTRACTORS:
        try:
            candidates.extend(extractor(text, folded, today))
        except Exception:  # a rule's bug costs the message that kind of entity, not the chat
            logger.exception("Entity rule %s failed", extractor.__name__)
    claimed = bytearray(len(text))  # 1 where an accepted entity already sits
    found: list[Entity] = []
    for candidate in sorted(candidates, key=lambda c: (c.priority, c.start, -c.end)):
        if candidate.start >= candidate.end or any(claimed[candidate.start : candidate.end]):
            continue
        claimed[candidate.start : candidate.end] = b"\x01" * (candidate.end - candidate.start)
        found.append(
            Entity(
                kind=candidate.kind,
                text=text[candidate.start : candidate.end],
                value=candidate.value,
                start=candidate.start,
                end=candidate.end,
            )
        )
    return sorted(found, key=lambda entity: entity.start)


# ---------------------------------------------------------------------------- emails

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w@])")


def _emails(text: str, folded: str, today: dt.date) -> Iterator[_Candidate]:
    for match in _EMAIL.finditer(text):
        yield _Candidate(0, "email", match.start(), match.end(), match.group().lower())


# ---------------------------------------------------------------------------- tracking numbers

_UPS = re.compile(r"\b1Z[0-9A-Z]{16}\b", re.IGNORECASE)
# UPU S10: two letters, eight digits, a check digit, the ISO country of the post that sent it.
# Upper case, possibly spaced ("RR 123 456 785 ES"); lower case only in one piece, since
# "el 123456789 de" is not a tracking number.
_S10 = re.compile(r"\b[A-Z]{2}(?:\s?\d){9}\s?[A-Z]{2}\b|\b[a-z]{2}\d{9}[a-z]{2}\b")
_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_TRACKING_KEYWORD = (
    r"\b(?:tracking|track|seguimiento|localizador|env[ií]o|shipment|waybill|albar[aá]n)\b"
)
_FILLER = r"(?:n[º°]|n\.[º°]|#|:|-|\b(?:no|num(?:ero|ber)?|n[uú]mero|is|was|es|era|id|code|c[oó]digo|de|del|the|el|mi|my)\b\.?(?!-))"
# Carriers without a letter pattern (DHL, SEUR, GLS, Correos Express...): a long run next to a keyword.
_KEYWORD_TRACKING = re.compile(
    rf"{_TRACKING_KEYWORD}(?:\s*{_FILLER})*\s*[:#]?\s*(?P<code>(?=[A-Z0-9-]*\d{{8}})[A-Z0-9][A-Z0-9-]{{7,34}}[A-Z0-9])\b",
    re.IGNORECASE,
)


def s10_check_digit(serial: str) -> int:
    """The UPU S10 check digit of an eight-digit serial number."""
    remainder = 11 - sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(remainder, remainder)


def _tracking(text: str, folded: str, today: dt.date) -> Iterator[_Candidate]:
    for match in _UPS.finditer(text):
        yield _Candidate(1, "tracking_number", match.start(), match.end(), match.group().upper())
    for match in _S10.finditer(text):
        compact = re.sub(r"\s", "", match.group()).upper()
        serial, check = compact[2:10], compact[10]
        near_keyword = _TRACKING_NEAR.search(folded, max(0, match.start() - 40), match.start())
        if int(check) == s10_check_digit(serial) or near_keyword:
            value = compact
            yield _Candidate(1, "tracking_number", match.start(), match.end(), value)
    for match in _KEYWORD_TRACKING.finditer(text):
        code = match.group("code")
        yield _Candidate(2, "tracking_number", match.start("code"), match.end("code"), code.upper())


_TRACKING_NEAR = re.compile(r"tracking|track|seguimiento|localizador|envio|shipment")

# ---------------------------------------------------------------------------- order numbers

_ORDER_KEYWORD = r"(?:pedidos?|orden|compra|encargo|orders?|purchase)\b"
_ORDER_CODE = r"#?(?:[A-Z]{1,4}-?)?\d[0-9A-Z-]*"
# The code must not be the start of an amount, a date or a quantity ("pedido de 120 €").
_NOT_AMOUNT_OR_DATE = (
    r"(?![.,/]\d)(?!\s*(?:€|eur\b|euros?\b|\$|£|usd\b|gbp\b|d[oó]lar|dollar|libras?\b|pounds?\b|%))"
)
_ORDER = re.compile(
    rf"\b{_ORDER_KEYWORD}(?:\s*{_FILLER})*\s*[:#]?\s*(?P<code>{_ORDER_CODE})\b{_NOT_AMOUNT_OR_DATE}",
    re.IGNORECASE,
)
# More codes after the first: "pedidos 4471 y 4472", "orders 1001, 1002 and 1003".
_ORDER_MORE = re.compile(
    rf"\s*(?:,|y|e|and|&|/)\s*(?P<code>{_ORDER_CODE})\b{_NOT_AMOUNT_OR_DATE}", re.IGNORECASE
)
_HASH_ORDER = re.compile(r"(?<![\w&])#(?P<code>(?:[A-Z]{1,4}-?)?\d{4,}[0-9A-Z-]*)\b", re.IGNORECASE)
_MIN_ORDER_DIGITS = 3
_YEAR = re.compile(r"(?:19|20)\d\d")
_DATE_SHAPED = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}-\d{1,2}-\d{2,4}")


def _order_value(code: str) -> str | None:
    code = code.lstrip("#").strip("-").upper()
    if sum(ch.isdigit() for ch in code) < _MIN_ORDER_DIGITS or _YEAR.fullmatch(code):
        return None
    if _DATE_SHAPED.fullmatch(code):
        return None  # "pedido 2025-12-01" is the order's date
    return code


# "hice un pedido el 2 de marzo (nº 30021)": a number sign with an order keyword shortly before.
_NUMBER_SIGN = re.compile(
    r"(?:\bn[º°]|\bn\.[º°]|\bnum\.|\bnumero|\bnumber|\bno\.)\s*[:#]?\s*(?P<code>\d{3,}[0-9a-z-]*)\b"
)
_ORDER_BEFORE = re.compile(r"\b(?:pedidos?|orden|compra|encargo|orders?|purchase)\b")
_ORDER_BEFORE_WINDOW = 40


def _orders(text: str, folded: str, today: dt.date) -> Iterator[_Candidate]:
    for match in _ORDER.finditer(text):
        position = match.end()
        value = _order_value(match.group("code"))
        if value:
            yield _Candidate(3, "order_number", match.start("code"), match.end("code"), value)
        while more := _ORDER_MORE.match(text, position):
            position = more.end()
            if value := _order_value(more.group("code")):
                yield _Candidate(3, "order_number", more.start("code"), more.end("code"), value)
    for match in _NUMBER_SIGN.finditer(folded):
        window = max(0, match.start() - _ORDER_BEFORE_WINDOW)
        if _ORDER_BEFORE.search(folded, window, match.start()) and (
            value := _order_value(text[match.start("code") : match.end("code")])
        ):
            yield _Candidate(4, "order_number", match.start("code"), match.end("code"), value)
    for match in _HASH_ORDER.finditer(text):
        if value := _order_value(match.group("code")):
            yield _Candidate(4, "order_number", match.start(), match.end(), value)


# ---------------------------------------------------------------------------- amounts

_CURRENCY_WORDS: dict[str, str] = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "$": "USD",
    "us$": "USD",
    "usd": "USD",
    "dolar": "USD",
    "dolares": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "£": "GBP",
    "gbp": "GBP",
    "libra": "GBP",
    "libras": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
}
_CURRENCY_AFTER = (
    r"(?:€|eur\b|euros?\b|usd\b|d[oó]lar(?:es)?\b|dollars?\b|£|gbp\b|libras?\b|pounds?\b|\$)"
)
_CURRENCY_BEFORE = r"(?:€|us\$|\$|£|eur\b|usd\b|gbp\b)"
# Thousands grouped with "." "," or a (thin) space, then up to two decimals; or a plain number.
_NUMBER = r"(?:\d{1,3}(?:(?:[.,]|[ \u00a0\u202f](?=\d{3}\b))\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)(?!\d|[.,]\d)"
_AMOUNT = re.compile(
    rf"(?<![\w.,])(?:(?P<before>{_CURRENCY_BEFORE})\s?(?P<n1>{_NUMBER})|(?P<n2>{_NUMBER})\s?(?P<after>{_CURRENCY_AFTER}))",
    re.IGNORECASE,
)
_AMOUNT_KEYWORD = (
    r"(?:importe|cantidad|cobr(?:aron|ado|ais|an|o|ar)|cargo|carg(?:aron|ado|o)|pagu[eé]|pagado|pag(?:o|ue)|"
    r"precio|total|reembolso|abono|cuesta|cost[oó]|valor|amount|charged?|paid|pay|price|refund|total|cost)"
)
_AMOUNT_FILLER = (
    r"(?::|\b(?:me|te|nos|el|la|un|una|de|del|of|is|was|es|era|fue|the|a|an|me\s+han|han|twice|"
    r"dos\s+veces|only|solo|s[oó]lo)\b)"
)
_UNIT_AFTER = (
    r"(?!\s*(?:veces|vez|times?|d[ií]as?|days?|horas?|hours?|semanas?|weeks?|mes(?:es)?|months?|"
    r"a[nñ]os?|years?|%|kg|g\b|cm|mm|m\b|unidades|units?|items?|art[ií]culos?|productos?|"
    r"pedidos?|orders?|minutos?|minutes?))"
)
_BARE_AMOUNT = re.compile(
    rf"\b{_AMOUNT_KEYWORD}\b(?:\s*{_AMOUNT_FILLER})*\s*(?P<n>{_NUMBER}){_UNIT_AFTER}",
    re.IGNORECASE,
)


def parse_number(raw: str) -> Decimal | None:
    """A written amount as a Decimal: "1.234,56" and "1,234.56" are both 1234.56, "49,90" is 49.90.

    The last separator followed by one or two digits is the decimal one; a separator followed by
    three digits groups thousands in either language (money is not written to three decimals).
    """
    raw = re.sub(r"[ \u00a0\u202f]", "", raw)
    if not re.fullmatch(r"\d[\d.,]*", raw):
        return None  # not digits and separators: "NaN", "1e5" and "-3" are no written amounts
    last = max(raw.rfind(","), raw.rfind("."))
    if last != -1 and len(raw) - last - 1 in (1, 2):
        whole, decimals = raw[:last], raw[last + 1 :]
    else:
        whole, decimals = raw, ""
    whole = whole.replace(".", "").replace(",", "")
    try:
        return Decimal(f"{whole}.{decimals}" if decimals else whole)
    except InvalidOperation:
        return None


def _amounts(text: str, folded: str, today: dt.date) -> Iterator[_Candidate]:
    for match in _AMOUNT.finditer(text):
        raw = match.group("n1") or match.group("n2")
        symbol = fold(match.group("before") or match.group("after")).lower()
        amount = parse_number(raw)
        currency = _CURRENCY_WORDS.get(symbol)
        if amount is not None and currency:
            yield _Candidate(5, "amount", match.start(), match.end(), Money(amount, currency))
    for match in _BARE_AMOUNT.finditer(text):
        amount = parse_number(match.group("n"))
        if amount is not None:
            yield _Candidate(6, "amount", match.start("n"), match.end("n"), Money(amount, "EUR"))


# ---------------------------------------------------------------------------- phones

_DIGIT_RUN = re.compile(r"\+?\d[\d\s().-]{6,}\d")
_MIN_PHONE_DIGITS = 9


def _phones(text: str, folded: str, today: dt.date) -> Iterator[_Candidate]:
    if not any(
        sum(ch.isdigit() for ch in run.group()) >= _MIN_PHONE_DIGITS
        for run in _DIGIT_RUN.finditer(text)
    ):
        return  # libphonenumber's matcher costs ~1 ms; most messages hold no phone at all
    for match in phonenumbers.PhoneNumberMatcher(text, "ES", phonenumbers.Leniency.VALID):
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        yield _Candidate(7, "phone", match.start, match.end, e164)


# ---------------------------------------------------------------------------- dates

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "enero ene january jan",
        "febrero feb february",
        "marzo mar march",
        "abril abr april apr",
        "mayo may",
        "junio jun june",
        "julio jul july",
        "agosto ago august aug",
        "septiembre setiembre sep sept set september",
        "octubre oct october",
        "noviembre nov november",
        "diciembre dic december dec",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
_WEEKDAYS = {
    "lunes": 0,
    "martes": 1,
    "miercoles": 2,
    "jueves": 3,
    "viernes": 4,
    "sabado": 5,
    "domingo": 6,
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_WEEKDAY = "(?:" + "|".join(_WEEKDAYS) + ")"
_COUNTS = {
    "un": 1,
    "una": 1,
    "uno": 1,
    "a": 1,
    "an": 1,
    "one": 1,
    "dos": 2,
    "two": 2,
    "un par de": 2,
    "a couple of": 2,
    "a couple": 2,
    "tres": 3,
    "three": 3,
    "cuatro": 4,
    "four": 4,
    "cinco": 5,
    "five": 5,
    "seis": 6,
    "six": 6,
    "siete": 7,
    "seven": 7,
    "ocho": 8,
    "eight": 8,
    "nueve": 9,
    "nine": 9,
    "diez": 10,
    "ten": 10,
    "quince": 15,
    "fifteen": 15,
}
_COUNT = (
    r"(?:\d{1,3}|" + "|".join(sorted(_COUNTS, key=len, reverse=True)).replace(" ", r"\s+") + ")"
)
_UNITS = {
    "dia": "days",
    "dias": "days",
    "day": "days",
    "days": "days",
    "semana": "weeks",
    "semanas": "weeks",
    "week": "weeks",
    "weeks": "weeks",
    "mes": "months",
    "meses": "months",
    "month": "months",
    "months": "months",
}
_UNIT = r"(?:dias?|semanas?|mes(?:es)?|days?|weeks?|months?)"

# Dates are matched on the folded text (lower case, no accents); offsets are the same.
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_NUMERIC = re.compile(
    r"(?<![\d.,/-])(\d{1,2})([/.-])(\d{1,2})(?:\2(\d{4}|\d{2}))?(?![\d/]|[.,-]\d)",
)
_DAY_MONTH = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th|º)?\s+(?:de\s+|of\s+)?({_MONTH})(?:,?\s+(?:de(?:l)?\s+)?(\d{{4}})(?![-/.]?\d))?(?!\d)"
)
_MONTH_DAY = re.compile(
    rf"\b({_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})(?![-/.]?\d))?(?!\d)"
)
_RELATIVE_WORDS = re.compile(
    r"\b(?:(?P<before>anteayer|antier|antes\s+de\s+ayer|the\s+day\s+before\s+yesterday)"
    r"|(?P<yesterday>ayer|yesterday|anoche|last\s+night)"
    r"|(?P<today>hoy|today|esta\s+manana|this\s+morning|tonight|esta\s+tarde|this\s+afternoon)"
    r"|(?P<lastweek>(?:la\s+)?semana\s+pasada|last\s+week)"
    r"|(?P<lastmonth>(?:el\s+)?mes\s+pasado|last\s+month))\b"
)
_AGO = re.compile(
    rf"\b(?:hace\s+(?P<n1>{_COUNT})\s+(?P<u1>{_UNIT})|(?P<n2>{_COUNT})\s+(?P<u2>{_UNIT})\s+ago)\b"
)
_WEEKDAY_PAST = re.compile(
    rf"\b(?:(?:el\s+)?(?:pasado\s+)?(?P<w1>{_WEEKDAY})\s+pasado"
    rf"|el\s+pasado\s+(?P<w2>{_WEEKDAY})"
    rf"|(?:el|este)\s+(?P<w3>{_WEEKDAY})"
    rf"|(?:last|on|this\s+past|past)\s+(?P<w4>{_WEEKDAY}))\b"
)
# A date without a year is taken as the most recent one, unless it falls this close ahead of
# today ("the delivery promised for 20 March", written on 12 March).
_FUTURE_WINDOW = dt.timedelta(days=31)


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _without_year(month: int, day: int, today: dt.date) -> dt.date | None:
    this_year = _safe_date(today.year, month, day)
    if this_year is None:  # 29 February: the most recent leap year
        year = today.year - 1
        while not calendar.isleap(year):
            year -= 1
        return _safe_date(year, month, day)
    if this_year - today > _FUTURE_WINDOW:
        return _safe_date(today.year - 1, month, day)
    return this_year


def _year(raw: str | None, today: dt.date) -> int | None:
    if not raw:
        return None
    year = int(raw)
    if len(raw) != 2:
        return year
    # "1/2/26" is 2026 and "1/2/99" 1999: two digits up to next year's are this century's.
    return 2000 + year if year <= today.year % 100 + 1 else 1900 + year


def _months_back(today: dt.date, months: int) -> dt.date:
    month_index = today.year * 12 + today.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(today.day, calendar.monthrange(year, month + 1)[1])
    return dt.date(year, month + 1, day)


def _absolute_dates(text: str, folded: str, today: dt.date) -> Iterator[_Candidate]:
    for match in _ISO.finditer(folded):
        if value := _safe_date(*(int(g) for g in match.groups())):
            yield _Candidate(8, "date", match.start(), match.end(), value)
    for match in _NUMERIC.finditer(folded):
        raw_day, separator, raw_month, raw_year = match.groups()
        if raw_year is None and separator != "/":
            continue  # "12.03" or "3-4" alone are more often numbers or ranges than dates
        full_year = _year(raw_year, today)
        if full_year is None:
            value = _without_year(int(raw_month), int(raw_day), today)
        else:
            value = _safe_date(full_year, int(raw_month), int(raw_day))
        if value:
            yield _Candidate(8, "date", match.start(), match.end(), value)
    for match in _DAY_MONTH.finditer(folded):
        raw_day, month_name, raw_year = match.groups()
        yield from _named_month(match, int(raw_day), month_name, raw_year, today)
    for match in _MONTH_DAY.finditer(folded):
        month_name, raw_day, raw_year = match.groups()
        if month_name == "may" and text[match.start()] == "m":
            continue  # "I may 3 times have asked": the verb, not the month
        yield from _named_month(match, int(raw_day), month_name, raw_year, today)


def _named_month(
    match: re.Match[str], day: int, month_name: str, year: str | None, today: dt.date
) -> Iterator[_Candidate]:
    month = _MONTHS[month_name.rstrip(".")]
    full_year = _year(year, today)
    value = (
        _without_year(month, day, today) if full_year is None else _safe_date(full_year, month, day)
    )
    if value:
        yield _Candidate(8, "date", match.start(), match.end(), value)


def _relative_dates(text: str, folded: str, today: dt.date) -> Iterator[_Candidate]:
    for match in _RELATIVE_WORDS.finditer(folded):
        group = match.lastgroup
        value = {
            "before": lambda: today - dt.timedelta(days=2),
            "yesterday": lambda: today - dt.timedelta(days=1),
            "today": lambda: today,
            "lastweek": lambda: today - dt.timedelta(days=7),
            "lastmonth": lambda: _months_back(today, 1),
        }[group or "today"]()
        yield _Candidate(9, "date", match.start(), match.end(), value)
    for match in _AGO.finditer(folded):
        raw_count = match.group("n1") or match.group("n2")
        unit = _UNITS[match.group("u1") or match.group("u2")]
        count = int(raw_count) if raw_count.isdigit() else _COUNTS[re.sub(r"\s+", " ", raw_count)]
        if unit == "months":
            value = _months_back(today, count)
        else:
            value = today - dt.timedelta(**{unit: count})
        yield _Candidate(9, "date", match.start(), match.end(), value)
    for match in _WEEKDAY_PAST.finditer(folded):
        name = next(g for g in match.group("w1", "w2", "w3", "w4") if g)
        days_back = (today.weekday() - _WEEKDAYS[name]) % 7 or 7
        yield _Candidate(
            9, "date", match.start(), match.end(), today - dt.timedelta(days=days_back)
        )


_EXTRACTORS: tuple[Callable[[str, str, dt.date], Iterator[_Candidate]], ...] = (
    _emails,
    _tracking,
    _orders,
    _amounts,
    _phones,
    _absolute_dates,
    _relative_dates,
)
