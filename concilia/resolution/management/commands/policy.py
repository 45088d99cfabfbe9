"""`concilia policy check|load|publish|facts|simulate`: policies from YAML files, checked, stored
as versions, made live, and replayed over past cases before they go live."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, NoReturn

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation
from django.utils.translation import gettext as _
from tqdm import tqdm

from concilia.resolution import actions, simulation
from concilia.resolution import facts as fact_schema
from concilia.resolution.models import Policy, PolicyVersion
from concilia.resolution.policy import Document, PolicyInvalid, Problem

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def line_of(source: str, where: str) -> int | None:
    """The line of the YAML text that `where` (e.g. `rules[2].when`) points at, if found."""
    try:
        node: Any = yaml.compose(source)
    except yaml.YAMLError:
        return None
    line = None
    for key, index in _STEP.findall(where):
        if node is None:
            break
        if index and isinstance(node, yaml.SequenceNode):
            position = int(index)
            node = node.value[position] if position < len(node.value) else None
        elif key and isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        else:
            break
        if node is not None:
            line = node.start_mark.line + 1
    return line


def describe_problem(source: str, problem: Problem) -> str:
    """`rules[1].when (line 12): unknown fact: order.totl`."""
    line = line_of(source, problem.where) if problem.where else None
    if line is None or problem.where.startswith(_("line")):
        return str(problem)
    return f"{problem.where} ({_('line %(line)s') % {'line': line}}): {problem.message}"


def parse_day(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(
            _("%(option)s: not a date; write it as YYYY-MM-DD, e.g. 2026-01-01")
            % {"option": option}
        ) from None


class Command(BaseCommand):
    help = "Check, store, publish and simulate resolution policies; list the facts they read."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(
            dest="action", required=True, metavar="check|load|publish|facts|simulate"
        )
        check = commands.add_parser("check", help="check a policy file, print every problem")
        check.add_argument("file", metavar="FILE.yaml")
        load = commands.add_parser("load", help="store a policy file as the policy's next version")
        load.add_argument("file", metavar="FILE.yaml")
        load.add_argument("--code", required=True, help="the policy's code, e.g. shop")
        load.add_argument("--publish", action="store_true", help="make the new version live")
        load.add_argument("--note", default="", help="what changed")
        publish = commands.add_parser("publish", help="make a stored version live")
        publish.add_argument("code")
        publish.add_argument("version", type=int)
        commands.add_parser("facts", help="every fact a condition may read, with its type")
        simulate = commands.add_parser(
            "simulate", help="replay a policy over past cases and compare with what was done"
        )
        simulate.add_argument(
            "policy", metavar="POLICY", help="a policy's code (its latest version) or a YAML file"
        )
        simulate.add_argument("--since", required=True, metavar="YYYY-MM-DD")
        simulate.add_argument("--until", metavar="YYYY-MM-DD", help="last day (default: today)")
        simulate.add_argument("--version", type=int, help="a stored version instead of the latest")
        simulate.add_argument(
            "--show",
            type=int,
            default=simulation.SHOWN_DIFFERENCES,
            metavar="N",
            help="differing cases to list (all are counted)",
        )

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"run_{action}")(**options)

    # Files ----------------------------------------------------------------------------------

    def read(self, file: str) -> str:
        try:
            return Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s") % {"file": file, "error": error}
            ) from None

    def checked(self, file: str, source: str) -> Document:
        try:
            return actions.check_policy(source)
        except PolicyInvalid as invalid:
            self.refuse(file, source, invalid)

    def refuse(self, file: str, source: str, invalid: PolicyInvalid) -> NoReturn:
        for problem in invalid.problems:
            self.stderr.write(f"{file}: {describe_problem(source, problem)}")
        raise CommandError(
            _("%(file)s is not valid: %(count)s problem(s); nothing was stored.")
            % {"file": file, "count": len(invalid.problems)}
        )

    def run_check(self, file: str, **_options) -> None:
        source = self.read(file)
        document = self.checked(file, source)
        self.stdout.write(
            _("%(file)s is valid: %(rules)s rule(s).")
            % {"file": file, "rules": len(document.rules)}
        )

    def run_load(self, file: str, code: str, publish: bool, note: str, **_options) -> None:
        if not re.fullmatch(r"[-a-zA-Z0-9_]{1,60}", code):
            raise CommandError(_("--code: letters, digits, - and _ only (e.g. shop)"))
        source = self.read(file)
        try:
            version = actions.save_policy_version(
                code=code, source=source, author=None, note=note, publish=publish
            )
        except PolicyInvalid as invalid:
            self.refuse(file, source, invalid)
        self.stdout.write(
            _("Stored %(version)s (%(status)s).")
            % {"version": version, "status": version.get_status_display()}
        )

    def run_publish(self, code: str, version: int, **_options) -> None:
        stored = self.find_version(code, version)
        try:
            actions.publish_version(version=stored, actor=None)
        except PolicyInvalid as invalid:
            self.refuse(str(stored), stored.source, invalid)
        self.stdout.write(_("%(version)s is live.") % {"version": stored})

    def find_version(self, code: str, number: int | None) -> PolicyVersion:
        policy = Policy.objects.filter(code=code).first()
        if policy is None:
            known = ", ".join(Policy.objects.values_list("code", flat=True)) or "—"
            raise CommandError(
                _("No policy %(code)s (policies: %(known)s).") % {"code": code, "known": known}
            )
        versions = policy.versions.order_by("-number")
        found = versions.filter(number=number).first() if number else versions.first()
        if found is None:
            raise CommandError(
                _("Policy %(code)s has no version %(number)s.")
                % {"code": code, "number": number or ""}
            )
        return found

    # Facts -------------------------------------------------------------------------------------

    def run_facts(self, **_options) -> None:
        self.stdout.write(
            _("Facts a condition may read (%(language)s):")
            % {"language": translation.get_language()}
        )
        for namespace, fields in fact_schema.SCHEMA.items():
            self.stdout.write("")
            for name, fact in fields.items():
                self.stdout.write(f"  {namespace}.{name:<24} {fact.type:<6} {fact.help}")

    # Simulation --------------------------------------------------------------------------------

    def run_simulate(
        self,
        policy: str,
        since: str,
        until: str | None,
        version: int | None,
        show: int,
        **_options,
    ) -> None:
        first = parse_day(since, "--since")
        last = parse_day(until, "--until") if until is not None else None
        if last is not None and last < first:
            raise CommandError(_("--until is before --since."))
        target: PolicyVersion | Document
        path = Path(policy)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            if version is not None:
                raise CommandError(_("--version is for a stored policy, not a file."))
            target = self.checked(policy, self.read(policy))
        else:
            target = self.find_version(policy, version)
        total = simulation.count_cases(first, last)
        with tqdm(total=total, desc=_("simulating"), unit=_("case"), leave=False) as bar:

            def progress(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            report = simulation.simulate(
                target, since=first, until=last, progress=progress, shown=max(0, show)
            )
        self.stdout.write(simulation.format_report(report))
