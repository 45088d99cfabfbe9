"""Conditions in the Common Expression Language: compiling them, the facts they name, and the
static checks that refuse a condition before it goes live (unknown facts, wrong types, never
true).

CEL is evaluated by `common-expression-language` (Rust bindings): no Python `eval`, no access to
anything but the facts passed in, and a few microseconds per condition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import cel
from django.utils.translation import gettext as _

from concilia.resolution import facts as fact_schema

_STRING = re.compile(r"""[rRbB]?("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')""")
_CHAIN = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)(\s*\()?")
_MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_KEYWORDS = frozenset({"true", "false", "null", "in"})
_COMPARISON = re.compile(
    r"^\s*([A-Za-z_]\w*\.[A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$"
)
_REVERSED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}


class ConditionError(Exception):
    """A condition that cannot go live; the message says why, for the person who wrote it."""


@dataclass(frozen=True)
class FactReference:
    path: str  # "order.days_late"


def without_strings(expression: str) -> str:
    return _STRING.sub('""', expression)


def split_conjunction(expression: str) -> list[str]:
    """The parts of `a && b && (c || d)` joined by a top-level `&&`: ["a", "b", "(c || d)"]."""
    parts: list[str] = []
    depth, start, index, quote = 0, 0, 0, ""
    while index < len(expression):
        char = expression[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "&" and expression.startswith("&&", index) and depth == 0:
            parts.append(expression[start:index].strip())
            start = index + 2
            index += 1
        index += 1
    parts.append(expression[start:].strip())
    return [part for part in parts if part]


def references(expression: str) -> tuple[list[str], list[str]]:
    """The fact paths a condition reads, and the names it uses that are not facts."""
    code = without_strings(expression)
    local = set(_MACRO_VARIABLE.findall(code))
    paths: list[str] = []
    unknown: list[str] = []
    for match in _CHAIN.finditer(code):
        chain = re.sub(r"\s+", "", match.group(1)).split(".")
        if match.group(2):  # a function or method call: the last name is the function
            chain = chain[:-1]
        if not chain or chain[0] in _KEYWORDS or chain[0] in local:
            continue
        namespace = chain[0]
        if namespace not in fact_schema.SCHEMA:
            unknown.append(".".join(chain))
            continue
        if len(chain) == 1:
            unknown.append(namespace)
            continue
        path = f"{namespace}.{chain[1]}"
        if fact_schema.known(path) is None:
            unknown.append(path)
        elif path not in paths:
            paths.append(path)
    return paths, unknown


def compile_condition(expression: str) -> Any:
    try:
        return cel.compile(expression)
    except ValueError as error:
        raise ConditionError(
            _("the condition does not parse: %(error)s") % {"error": _first_line(error)}
        ) from None


def run(program: Any, values: Any) -> Any:
    """The condition's value for `values`: a dict, or a `cel.Context` built once for many."""
    return program.execute(values)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    # The parser's message: "Failed to parse expression '…': ERROR: <input>:1:6: Syntax error: …"
    if "ERROR:" in text:
        text = text.split("ERROR:", 1)[1]
    return " ".join(text.split("\n")[:3]).strip()


def check(expression: str) -> list[str]:
    """Fact paths read by a condition that is valid, or ConditionError naming the first problem."""
    if not expression.strip():
        raise ConditionError(_("empty condition"))
    program = compile_condition(expression)
    paths, unknown = references(expression)
    if unknown:
        raise ConditionError(_("unknown fact: %(name)s") % {"name": unknown[0]})
    try:
        result = run(program, fact_schema.to_expression_values(fact_schema.sample()))
    except Exception as error:
        raise ConditionError(
            _("the condition fails on typical facts: %(error)s") % {"error": _first_line(error)}
        ) from None
    if not isinstance(result, bool):
        raise ConditionError(
            _("the condition gives %(type)s, not true or false") % {"type": type(result).__name__}
        )
    return paths


def constant(expression: str) -> bool | None:
    """True or False for a condition that reads no fact at all; None otherwise."""
    paths, unknown = references(expression)
    if paths or unknown:
        return None
    try:
        result = run(compile_condition(expression), {})
    except Exception:
        return None
    return result if isinstance(result, bool) else None


def contradiction(expression: str) -> str | None:
    """The fact whose bounds in a conjunction leave no value (`x > 5 && x < 3`), if any."""
    low: dict[str, tuple[Decimal, bool]] = {}
    high: dict[str, tuple[Decimal, bool]] = {}
    equal: dict[str, Decimal] = {}
    for part in split_conjunction(expression):
        found = _COMPARISON.match(part)
        match = found.groups() if found else _reversed_comparison(part)
        if match is None:
            continue
        path, op, number = match
        try:
            value = Decimal(number)
        except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
            continue
        if op == "==":
            if path in equal and equal[path] != value:
                return path
            equal[path] = value
        elif op in (">", ">="):
            strict = op == ">"
            if path not in low or value > low[path][0] or (value == low[path][0] and strict):
                low[path] = (value, strict)
        elif op in ("<", "<="):
            strict = op == "<"
            if path not in high or value < high[path][0] or (value == high[path][0] and strict):
                high[path] = (value, strict)
    for path in set(low) | set(high) | set(equal):
        lo, hi, eq = low.get(path), high.get(path), equal.get(path)
        if lo and hi and (lo[0] > hi[0] or (lo[0] == hi[0] and (lo[1] or hi[1]))):
            return path
        if eq is not None and lo and (eq < lo[0] or (eq == lo[0] and lo[1])):
            return path
        if eq is not None and hi and (eq > hi[0] or (eq == hi[0] and hi[1])):
            return path
    return None


def _reversed_comparison(part: str) -> tuple[str, str, str] | None:
    match = re.match(
        r"^\s*(-?\d+(?:\.\d+)?)\s*(<=|>=|==|!=|<|>)\s*([A-Za-z_]\w*\.[A-Za-z_]\w*)\s*$", part
    )
    if match is None:
        return None
    return match.group(3), _REVERSED[match.group(2)], match.group(1)


def string_values(expression: str, path: str) -> list[str]:
    """The text values a condition compares `path` with: `path == "x"`, `path in ["x", "y"]`."""
    values: list[str] = []
    dotted = re.escape(path).replace(r"\.", r"\s*\.\s*")
    for match in re.finditer(
        dotted + r"""\s*==\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", expression
    ):
        values.append(match.group(1)[1:-1])
    for match in re.finditer(
        r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*==\s*""" + dotted, expression
    ):
        values.append(match.group(1)[1:-1])
    for match in re.finditer(dotted + r"\s+in\s*\[([^\]]*)\]", expression):
        values += [
            m[1:-1] for m in re.findall(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""", match.group(1))
        ]
    return values
