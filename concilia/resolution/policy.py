"""A policy document: what administrators write (YAML), read into typed rules and checked before
it may go live.

    name: {es: Envíos, en: Deliveries}
    applies_to: [shipping_delay, damaged_missing]      # optional: every category
    currency: EUR
    rules:
      - id: lost-parcel
        when: order.shipment_status == "lost"
        then:
          resolve: {kind: refund, amount: order.total}
        reason:
          es: "El transportista ha perdido el paquete: te devolvemos {amount}."
          en: "The carrier lost the parcel: we refund {amount}."

Every problem found is reported with where it is (`rules[2].when`) and what is wrong, and an
invalid document is never stored as a live version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from django.utils.translation import gettext as _

from concilia.resolution import expressions
from concilia.resolution import facts as fact_schema

LANGUAGES = ("es", "en")
OUTCOMES = ("resolve", "offer", "ask_evidence", "escalate", "mediate")
MONEY_KINDS = ("refund", "partial_refund", "credit")
KINDS = (*MONEY_KINDS, "replacement", "return_label", "discount_code")
EVIDENCE = ("photo", "document")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
_OUTCOME_PLACEHOLDERS = frozenset({"amount", "options", "evidence", "team", "percent"})


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class PolicyInvalid(Exception):
    """The document cannot go live; `problems` says each thing to fix, and where."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Amount:
    """How much: a money fact, a percentage of one, or a fixed sum; then bounds and rounding."""

    of: str = ""
    percent: Decimal = Decimal("100")
    fixed: Decimal | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    step: Decimal = Decimal("0.01")


@dataclass(frozen=True)
class Option:
    kind: str
    amount: Amount | None = None
    percent: Decimal | None = None  # a discount code's percentage


@dataclass(frozen=True)
class Counter:
    """How far a counter-proposal is met without a person: up to `up_to_percent` more than the
    best option, never above `cap`, for `rounds` rounds; beyond that a person decides."""

    up_to_percent: Decimal = Decimal("0")
    cap: Decimal | None = None
    rounds: int = 1


@dataclass(frozen=True)
class Outcome:
    type: str
    options: tuple[Option, ...] = ()
    valid_days: int = 7
    counter: Counter | None = None
    evidence: tuple[str, ...] = ()
    wait_days: int = 7
    team: str = ""


@dataclass(frozen=True)
class Rule:
    id: str
    when: str
    outcome: Outcome
    reason: dict[str, str]
    description: str = ""
    clauses: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    programs: tuple[Any, ...] = field(default=(), compare=False, repr=False)
    # The facts each clause reads, for the trace of a rule that did not fire.
    clause_reads: tuple[tuple[str, ...], ...] = field(default=(), compare=False, repr=False)
    program: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Document:
    name: dict[str, str]
    rules: tuple[Rule, ...]
    applies_to: tuple[str, ...] = ()
    currency: str = "EUR"

    def applies(self, category: str) -> bool:
        return not self.applies_to or category in self.applies_to


def parse(
    source: str, *, categories: set[str] | None = None, teams: set[str] | None = None
) -> Document:
    """Read and check a policy; raise PolicyInvalid listing every problem found.

    `categories` and `teams` are the codes that exist: a rule naming another one is refused
    (its condition could never be true, or its case would go nowhere).
    """
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = _("line %(line)s") % {"line": mark.line + 1} if mark else ""
        raise PolicyInvalid(
            [
                Problem(
                    where,
                    _("not valid YAML: %(error)s") % {"error": getattr(error, "problem", error)},
                )
            ]
        ) from None
    reader = _Reader(categories=categories, teams=teams)
    document = reader.document(data)
    if reader.problems or document is None:
        raise PolicyInvalid(reader.problems)
    return document


class _Reader:
    def __init__(self, *, categories: set[str] | None, teams: set[str] | None):
        self.problems: list[Problem] = []
        self.categories = categories
        self.teams = teams

    def fail(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def document(self, data: Any) -> Document | None:
        if not isinstance(data, dict):
            self.fail("", _("a policy is a mapping with name, rules and the optional applies_to"))
            return None
        for key in data:
            if key not in ("name", "applies_to", "currency", "rules"):
                self.fail(str(key), _("unknown key"))
        name = self.texts(data.get("name"), "name")
        applies_to = data.get("applies_to") or []
        if not isinstance(applies_to, list) or not all(isinstance(c, str) for c in applies_to):
            self.fail("applies_to", _("a list of category codes"))
            applies_to = []
        for code in applies_to:
            if self.categories is not None and code not in self.categories:
                self.fail("applies_to", _("unknown category: %(code)s") % {"code": code})
        currency = data.get("currency", "EUR")
        if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
            self.fail("currency", _("a three-letter currency code such as EUR"))
            currency = "EUR"
        raw_rules = data.get("rules")
        if not isinstance(raw_rules, list) or not raw_rules:
            self.fail("rules", _("a policy needs a list of at least one rule"))
            raw_rules = []
        rules: list[Rule] = []
        seen: dict[str, str] = {}
        catch_all = ""
        for index, raw in enumerate(raw_rules):
            where = f"rules[{index}]"
            rule = self.rule(raw, where, set(applies_to))
            if rule is None:
                continue
            if rule.id in {r.id for r in rules}:
                self.fail(
                    f"{where}.id", _("another rule already has the id %(id)s") % {"id": rule.id}
                )
            normalised = " ".join(rule.when.split())
            if catch_all:
                self.fail(
                    f"{where}.when",
                    _("can never fire: rule %(rule)s before it applies to every case")
                    % {"rule": catch_all},
                )
            elif normalised in seen:
                self.fail(
                    f"{where}.when",
                    _("can never fire: rule %(rule)s before it has the same condition")
                    % {"rule": seen[normalised]},
                )
            seen.setdefault(normalised, rule.id)
            if not rule.when.strip() or expressions.constant(rule.when) is True:
                catch_all = catch_all or rule.id
            rules.append(rule)
        return Document(
            name=name, rules=tuple(rules), applies_to=tuple(applies_to), currency=currency
        )

    def texts(self, value: Any, where: str) -> dict[str, str]:
        if not isinstance(value, dict):
            self.fail(where, _("a text in each language: {es: …, en: …}"))
            return {}
        texts: dict[str, str] = {}
        for language in LANGUAGES:
            text = value.get(language)
            if not isinstance(text, str) or not text.strip():
                self.fail(f"{where}.{language}", _("missing text"))
            else:
                texts[language] = text.strip()
        for language in value:
            if language not in LANGUAGES:
                self.fail(f"{where}.{language}", _("unknown language"))
        return texts

    def rule(self, raw: Any, where: str, applies_to: set[str]) -> Rule | None:
        if not isinstance(raw, dict):
            self.fail(where, _("a rule is a mapping with id, when, then and reason"))
            return None
        for key in raw:
            if key not in ("id", "when", "then", "reason", "description"):
                self.fail(f"{where}.{key}", _("unknown key"))
        rule_id = raw.get("id")
        if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
            self.fail(
                f"{where}.id", _("an id of lower-case letters, digits, - and _ (e.g. lost-parcel)")
            )
            rule_id = f"#{where}"
        when = raw.get("when", "")
        if isinstance(when, bool):
            when = "true" if when else "false"
        if not isinstance(when, str):
            self.fail(f"{where}.when", _("a condition, written as text"))
            when = "false"
        clauses: list[str] = []
        reads: list[str] = []
        programs: list[Any] = []
        program = None
        if when.strip():
            try:
                reads = expressions.check(when)
                program = expressions.compile_condition(when)
                clauses = expressions.split_conjunction(when)
                programs = [expressions.compile_condition(c) for c in clauses]
            except expressions.ConditionError as error:
                self.fail(f"{where}.when", str(error))
            else:
                self.never_fires(when, f"{where}.when", applies_to)
        outcome = self.outcome(raw.get("then"), f"{where}.then")
        reason = self.texts(raw.get("reason"), f"{where}.reason")
        for language, text in reason.items():
            for name in _PLACEHOLDER.findall(text):
                if name not in _OUTCOME_PLACEHOLDERS and fact_schema.known(name) is None:
                    self.fail(
                        f"{where}.reason.{language}",
                        _("unknown placeholder {%(name)s}") % {"name": name},
                    )
        if outcome is None:
            return None
        description = raw.get("description", "")
        return Rule(
            id=rule_id,
            when=when.strip(),
            outcome=outcome,
            reason=reason,
            description=description if isinstance(description, str) else "",
            clauses=tuple(clauses),
            clause_reads=tuple(tuple(expressions.references(c)[0]) for c in clauses),
            reads=tuple(reads),
            programs=tuple(programs),
            program=program,
        )

    def never_fires(self, when: str, where: str, applies_to: set[str]) -> None:
        if expressions.constant(when) is False:
            self.fail(where, _("can never fire: the condition is always false"))
            return
        path = expressions.contradiction(when)
        if path:
            self.fail(
                where,
                _("can never fire: no value of %(fact)s meets all its comparisons")
                % {"fact": path},
            )
        for code in expressions.string_values(when, "case.category"):
            if self.categories is not None and code not in self.categories:
                self.fail(where, _("can never fire: unknown category %(code)s") % {"code": code})
            elif applies_to and code not in applies_to:
                self.fail(
                    where,
                    _("can never fire: the policy does not apply to category %(code)s")
                    % {"code": code},
                )

    def outcome(self, raw: Any, where: str) -> Outcome | None:
        if not isinstance(raw, dict) or len(raw) != 1:
            self.fail(
                where,
                _("exactly one outcome: %(choices)s") % {"choices": ", ".join(OUTCOMES)},
            )
            return None
        ((kind, body),) = raw.items()
        where = f"{where}.{kind}"
        if kind not in OUTCOMES:
            self.fail(
                where, _("unknown outcome; one of %(choices)s") % {"choices": ", ".join(OUTCOMES)}
            )
            return None
        body = body if body is not None else {}
        if not isinstance(body, dict):
            self.fail(where, _("a mapping"))
            return None
        if kind == "resolve":
            option = self.option(body, where)
            return Outcome("resolve", options=(option,)) if option else None
        if kind == "offer":
            self.keys(body, where, ("options", "valid_days", "counter"))
            raw_options = body.get("options")
            if not isinstance(raw_options, list) or not raw_options:
                self.fail(f"{where}.options", _("a list of at least one option"))
                return None
            options = [self.option(o, f"{where}.options[{i}]") for i, o in enumerate(raw_options)]
            counter = self.counter(body.get("counter"), f"{where}.counter")
            valid_days = self.integer(body.get("valid_days", 7), f"{where}.valid_days", 1, 365)
            if counter and not any(o and o.amount for o in options):
                self.fail(f"{where}.counter", _("only an offer of money can be countered"))
            if not all(options):
                return None
            return Outcome(
                "offer",
                options=tuple(o for o in options if o),
                valid_days=valid_days,
                counter=counter,
            )
        if kind == "ask_evidence":
            self.keys(body, where, ("items", "wait_days"))
            items = body.get("items")
            if not isinstance(items, list) or not items or any(i not in EVIDENCE for i in items):
                self.fail(
                    f"{where}.items",
                    _("a list of what to ask for: %(choices)s") % {"choices": ", ".join(EVIDENCE)},
                )
                items = []
            wait_days = self.integer(body.get("wait_days", 7), f"{where}.wait_days", 1, 90)
            return Outcome("ask_evidence", evidence=tuple(items), wait_days=wait_days)
        self.keys(body, where, ("team",))
        team = body.get("team", "")
        if not isinstance(team, str):
            self.fail(f"{where}.team", _("a team's code"))
            team = ""
        if team and self.teams is not None and team not in self.teams:
            self.fail(f"{where}.team", _("unknown team: %(code)s") % {"code": team})
        return Outcome(kind, team=team)

    def keys(self, body: dict, where: str, allowed: tuple[str, ...]) -> None:
        for key in body:
            if key not in allowed:
                self.fail(f"{where}.{key}", _("unknown key"))

    def option(self, raw: Any, where: str) -> Option | None:
        if not isinstance(raw, dict):
            self.fail(where, _("an option: {kind: refund, amount: order.total}"))
            return None
        self.keys(raw, where, ("kind", "amount", "percent"))
        kind = raw.get("kind")
        if kind not in KINDS:
            self.fail(f"{where}.kind", _("one of %(choices)s") % {"choices": ", ".join(KINDS)})
            return None
        amount = None
        percent = None
        if kind in MONEY_KINDS:
            if "amount" not in raw:
                self.fail(f"{where}.amount", _("a %(kind)s needs an amount") % {"kind": kind})
                return None
            amount = self.amount(raw["amount"], f"{where}.amount")
            if amount is None:
                return None
        elif "amount" in raw:
            self.fail(f"{where}.amount", _("a %(kind)s has no amount") % {"kind": kind})
        if kind == "discount_code":
            percent = self.decimal(raw.get("percent"), f"{where}.percent", minimum=Decimal("1"))
            if percent is not None and percent > 100:
                self.fail(f"{where}.percent", _("at most 100"))
            if percent is None:
                return None
        return Option(kind=kind, amount=amount, percent=percent)

    def amount(self, raw: Any, where: str) -> Amount | None:
        if isinstance(raw, str):
            raw = {"of": raw}
        elif isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool):
            raw = {"fixed": raw}
        if not isinstance(raw, dict):
            self.fail(
                where, _("a money fact (order.total), a number, or {percent, of, min, max, round}")
            )
            return None
        self.keys(raw, where, ("of", "percent", "fixed", "min", "max", "round"))
        of = raw.get("of", "")
        fixed = self.decimal(raw["fixed"], f"{where}.fixed") if "fixed" in raw else None
        if bool(of) == (fixed is not None or "fixed" in raw):
            self.fail(where, _("either of (a money fact) or fixed (a sum), not both or neither"))
            return None
        if of:
            fact = fact_schema.known(of) if isinstance(of, str) else None
            if fact is None or fact.type != fact_schema.MONEY:
                money = [
                    f"{ns}.{n}"
                    for ns, fs in fact_schema.SCHEMA.items()
                    for n, f in fs.items()
                    if f.type == fact_schema.MONEY
                ]
                self.fail(
                    f"{where}.of",
                    _("not a money fact; one of %(choices)s") % {"choices": ", ".join(money)},
                )
                return None
        percent = self.decimal(raw.get("percent", 100), f"{where}.percent", minimum=Decimal("0"))
        minimum = self.decimal(raw["min"], f"{where}.min") if "min" in raw else None
        maximum = self.decimal(raw["max"], f"{where}.max") if "max" in raw else None
        step = self.decimal(raw.get("round", "0.01"), f"{where}.round", minimum=Decimal("0.01"))
        if minimum is not None and maximum is not None and minimum > maximum:
            self.fail(where, _("min is above max"))
        if percent is None or step is None:
            return None
        return Amount(
            of=of or "", percent=percent, fixed=fixed, minimum=minimum, maximum=maximum, step=step
        )

    def counter(self, raw: Any, where: str) -> Counter | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.fail(where, _("a mapping: {up_to_percent: 20, cap: 50, rounds: 2}"))
            return None
        self.keys(raw, where, ("up_to_percent", "cap", "rounds"))
        up_to = self.decimal(
            raw.get("up_to_percent", 0), f"{where}.up_to_percent", minimum=Decimal("0")
        )
        cap = self.decimal(raw["cap"], f"{where}.cap") if "cap" in raw else None
        rounds = self.integer(raw.get("rounds", 1), f"{where}.rounds", 1, 10)
        return Counter(up_to_percent=up_to or Decimal("0"), cap=cap, rounds=rounds)

    def decimal(self, raw: Any, where: str, minimum: Decimal = Decimal("0")) -> Decimal | None:
        if isinstance(raw, bool) or raw is None:
            self.fail(where, _("a number"))
            return None
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            self.fail(where, _("a number"))
            return None
        if not value.is_finite() or value < minimum:
            self.fail(where, _("a number of at least %(minimum)s") % {"minimum": minimum})
            return None
        return value

    def integer(self, raw: Any, where: str, low: int, high: int) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            self.fail(
                where, _("a whole number from %(low)s to %(high)s") % {"low": low, "high": high}
            )
            return low
        return raw
