#!/usr/bin/env python3
"""Benchmark: many customers talking to the complaints assistant at once, through the chat API.

Starts Concilia the way the README does (`concilia demo`, then `concilia serve` on loopback in a
fresh CONCILIA_HOME), then runs --customers simulated customers at once. Each one starts a
conversation, accepts the privacy notice, describes a problem (late parcels, double charges,
damaged parcels, returns, refunds; in Spanish and English), answers whatever the assistant asks
from its `expects` and `choices`, confirms the summary, gets a case reference (RC-…), waits for
the company's policies to answer in the chat (polling as the widget does; an offer is accepted)
and answers the survey. Every request is timed, and so is the wait for the policies' answer. Afterwards the database must hold exactly one case per finished
conversation. Exits 1 on any error (non-2xx answer, unfinished conversation, case mismatch).

    python bench/conversations.py                        # 200 customers, SQLite
    python bench/conversations.py --customers 50 --workers 2
    python bench/conversations.py --db postgres          # a fresh database on 127.0.0.1

The chat rate limits are switched off for the run (CONCILIA_CHAT_START_RATE=0 and
CONCILIA_CHAT_MESSAGE_RATE=0): every customer comes from 127.0.0.1. Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# The shared machinery of the HTTP benchmarks: the instance (home, demo, serve, stop) and helpers.
from complaints import (
    CLK_TCK,
    PROTECTED_DATABASES,
    BenchError,
    Instance,
    code_version,
    cpu_delta,
    machine_busy,
    percentile,
    python_speed,
    wait_for_quiet,
)
from complaints import server_cpu as server_cpu_named

START = "/api/v1/conversations"
TOKEN_HEADER = "X-Conversation-Token"  # noqa: S105 - a header name, not a secret
MAX_TURNS = 40  # a conversation that needs more has gone round in circles
SKIP = "__skip"
WAIT = "wait"  # a message after which more follows without the customer's answer: poll for it
DECISION_LIMIT_S = 30.0  # the policies' answer must be in the chat by then
REFERENCE = re.compile(r"\bRC-[0-9A-Z-]+")
DISTURBED_PCT = 5.0  # other processes using more of the machine than this spoil a run


@dataclass(frozen=True)
class Script:
    """One kind of complaint: what the customer writes first and what they answer later."""

    kind: str
    language: str
    description: str  # {order} and {amount} are filled per customer
    last_digit: int  # the demo shop's orders tell their story by their last digit


# Late parcels end in 4-6 (in transit), delivered ones in 0-3 or 9; a 9 first means "not found".
SCRIPTS = (
    Script(
        "late parcel",
        "es",
        "Mi paquete no ha llegado todavía y ya pasó la fecha de entrega, pedido {order}",
        4,
    ),
    Script(
        "late parcel",
        "en",
        "My parcel still has not arrived and the delivery date has passed, order {order}",
        5,
    ),
    Script(
        "double charge",
        "es",
        "Me han cobrado dos veces la factura de este mes, {amount} € cada vez",
        1,
    ),
    Script(
        "double charge",
        "en",
        "You charged me twice on my bill this month, {amount} EUR each time",
        1,
    ),
    Script(
        "damaged parcel", "es", "El paquete llegó roto, la caja estaba aplastada. Pedido {order}", 9
    ),
    Script(
        "damaged parcel", "en", "My parcel arrived damaged, the box was crushed. Order {order}", 9
    ),
    Script("return", "es", "Quiero devolver un producto que compré, el pedido {order}", 2),
    Script("return", "en", "I want to return an item I bought, order {order}", 3),
    Script(
        "refund",
        "es",
        "Devolví el pedido {order} hace tres semanas y todavía no me han reembolsado",
        0,
    ),
    Script(
        "refund",
        "en",
        "I returned order {order} three weeks ago and I still have not got my refund",
        7,
    ),
)
NAMES = {
    "es": ("Lucía Fernández", "Javier Romero", "Carmen Ortega", "Pablo Navarro"),
    "en": ("James Carter", "Emily Walsh", "Oliver Grant", "Sophie Turner"),
}
ANSWERS = {
    "es": {"date": "ayer", "text": "Unos auriculares", "amount": "{amount} €", "comment": "Rápido"},
    "en": {
        "date": "yesterday",
        "text": "Some headphones",
        "amount": "€{amount}",
        "comment": "Quick",
    },
}


# --------------------------------------------------------------------------------------------
# What the customers saw


@dataclass
class Turn:
    step: str  # what the customer was answering: start, consent, problem, email, name, … (poll)
    status: int  # HTTP status, 0 for a transport error
    ms: float  # from sending the request to having read the whole answer
    waited_ms: float  # before that, waiting for a free connection of the client's pool


@dataclass
class Outcome:
    """One customer's conversation."""

    index: int
    script: str
    language: str
    conversation: str = ""
    reference: str = ""
    status: str = ""  # the conversation's status at the end: closed, handed_over, …
    finished: bool = False
    surveyed: bool = False
    # Settled by the company's policy in the chat (an offer accepted).
    settled: bool = False
    problem: str = ""  # why it did not finish
    turns: list[Turn] = field(default_factory=list)  # the customer's POSTs
    polls: list[Turn] = field(default_factory=list)  # GETs while the policies decided
    # From having the confirmation's reply to having the policies' answer (offer, survey, a
    # person) by polling; and the same on the server's clock (the two messages' timestamps).
    decision_shown_ms: float | None = None
    decision_server_ms: float | None = None


@dataclass
class Run:
    outcomes: list[Outcome]
    duration_s: float
    client_cpu_s: float

    @property
    def turns(self) -> list[Turn]:
        return [t for o in self.outcomes for t in o.turns]

    @property
    def polls(self) -> list[Turn]:
        return [t for o in self.outcomes for t in o.polls]


def _timestamp(text: str) -> float:
    """Seconds since the epoch of an API timestamp (ISO 8601, `Z` or an offset)."""
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------------------------
# One customer


class Customer:
    """Walks one conversation to its end, answering generically from `expects` and `choices`."""

    def __init__(
        self,
        client,
        gate: asyncio.Semaphore,
        index: int,
        batch: str,
        think_s: float,
        rng: random.Random,
        poll_s: float = 0.5,
    ):
        self.client = client
        self.gate = gate
        self.think_s = think_s
        self.poll_s = poll_s
        self.rng = rng
        script = SCRIPTS[index % len(SCRIPTS)]
        self.script = script
        self.language = script.language
        # 3 to 7 digits, never starting with 9 (the demo shop's "not found" numbers).
        self.order = f"{1 + index % 8}{index:04d}{script.last_digit}"
        separator = "," if script.language == "es" else "."
        self.amount = f"{10 + index % 90}{separator}{index % 100:02d}"
        self.email = f"bench+{batch}-{index}@example.com"
        self.name = NAMES[self.language][index % len(NAMES[self.language])]
        self.outcome = Outcome(index=index, script=script.kind, language=self.language)
        self.id = ""
        self.token = ""
        self.last: list[dict] = []  # the assistant's messages of the last answer

    # -- HTTP ------------------------------------------------------------------------------

    async def post(self, path: str, payload: dict, step: str) -> dict | None:
        if self.think_s:
            await asyncio.sleep(self.rng.uniform(0, 2 * self.think_s))
        return await self.request(path, payload, step, self.outcome.turns)

    async def request(
        self, path: str, payload: dict | None, step: str, timed: list[Turn]
    ) -> dict | None:
        """A POST of `payload` (a GET when None), timed into `timed`; None when it failed."""
        import httpx

        headers = {TOKEN_HEADER: self.token} if self.token else {}
        queued = time.perf_counter()
        async with self.gate:  # at most --connections requests on the wire
            started = time.perf_counter()
            try:
                if payload is None:
                    response = await self.client.get(path, headers=headers)
                else:
                    response = await self.client.post(path, json=payload, headers=headers)
                status = response.status_code
                body = response.content
            except httpx.HTTPError as exc:
                status, body = 0, type(exc).__name__.encode()
            ended = time.perf_counter()
        timed.append(Turn(step, status, (ended - started) * 1000, (started - queued) * 1000))
        if not 200 <= status < 300:
            self.outcome.problem = f"{step}: HTTP {status or body.decode()}"
            return None
        data = json.loads(body)
        self.outcome.status = data.get("status", "")
        if data.get("case_reference"):
            self.outcome.reference = data["case_reference"]
        self.last = [m for m in data.get("messages", []) if m["author"] != "customer"]
        return data

    async def say(self, step: str, text: str = "", choice: str = "") -> bool:
        payload = {"choice": choice} if choice else {"text": text}
        data = await self.post(f"{START}/{self.id}/messages", payload, step)
        return data is not None

    async def wait_for_decision(self) -> bool:
        """Poll as the widget does (every `poll_s`) until the policies' answer follows the
        "one moment" message; times it on both clocks."""
        waiting = self.last[-1]
        seen = waiting["seq"]
        replied = time.perf_counter()
        while time.perf_counter() - replied < DECISION_LIMIT_S:
            await asyncio.sleep(self.poll_s)
            data = await self.request(
                f"{START}/{self.id}?after={seen}", None, "poll", self.outcome.polls
            )
            if data is None:
                return False
            messages = data.get("messages", [])
            seen = max([seen, *(m["seq"] for m in messages)])
            said = [m for m in messages if m["author"] != "customer"]
            if said and said[-1]["expects"] != WAIT:
                self.last = said
                self.outcome.decision_shown_ms = (time.perf_counter() - replied) * 1000
                self.outcome.decision_server_ms = 1000 * (
                    _timestamp(said[0]["created_at"]) - _timestamp(waiting["created_at"])
                )
                return True
        self.outcome.problem = f"no answer from the policies {DECISION_LIMIT_S:.0f}s after"
        return False

    # -- what the assistant asks -----------------------------------------------------------

    @property
    def expects(self) -> str:
        return self.last[-1]["expects"] if self.last else ""

    @property
    def choices(self) -> list[str]:
        return [c["value"] for c in self.last[-1]["choices"]] if self.last else []

    @property
    def answer(self) -> str:
        return "\n".join(m["body"] for m in self.last)

    def reply(self) -> tuple[str, str, str]:
        """(step, text, choice): a generic answer to whatever was asked last."""
        expects, choices = self.expects, self.choices
        words = ANSWERS[self.language]
        if choices == ["yes", "no"]:
            return "confirm" if "•" in self.answer else "yes/no", "", "yes"
        if expects == "email":
            return "email", self.email, ""
        if expects == "name":
            return "name", self.name, ""
        if expects == "date":
            return "date", words["date"], ""
        if expects == "amount":
            return "amount", words["amount"].format(amount=self.amount), ""
        if SKIP in choices:
            return f"skip {expects}", "", SKIP
        if choices:
            return expects or "choice", "", choices[0]
        lowered = self.answer.lower()
        if "pedido" in lowered or "order" in lowered:  # the order number, asked again
            return "order", self.order, ""
        if "fecha" in lowered or "date" in lowered or "cuándo" in lowered or "when" in lowered:
            return "date", words["date"], ""
        if "importe" in lowered or "amount" in lowered:
            return "amount", words["amount"].format(amount=self.amount), ""
        return expects or "text", words["text"], ""

    # -- the whole conversation ------------------------------------------------------------

    async def run(self) -> Outcome:
        outcome = self.outcome
        data = await self.post(START, {"language": self.language, "channel": "api"}, "start")
        if data is None:
            return outcome
        self.id, self.token = data["id"], data["token"]
        outcome.conversation = self.id
        if "accept" not in self.choices:
            outcome.problem = f"no privacy notice to accept: {self.answer[:120]!r}"
            return outcome
        if not await self.say("consent", choice="accept"):
            return outcome
        text = self.script.description.format(order=self.order, amount=self.amount)
        if not await self.say("problem", text=text):
            return outcome
        for _ in range(MAX_TURNS):
            if outcome.reference:
                if outcome.reference not in REFERENCE.findall(self.answer):
                    outcome.problem = f"{outcome.reference} not in the answer: {self.answer!r}"
                    return outcome
                break
            if outcome.status == "closed" or self.expects == "none":
                outcome.problem = f"ended without a case: {self.answer[:160]!r}"
                return outcome
            step, text, choice = self.reply()
            if not await self.say(step, text=text, choice=choice):
                return outcome
        else:
            outcome.problem = f"no case after {MAX_TURNS} turns: {self.answer[:160]!r}"
            return outcome
        # The policies decide after the confirmation's reply: their answer follows in the chat.
        if self.expects == WAIT and not await self.wait_for_decision():
            return outcome
        # An offer from the company's policy (the demo shop's, for a late parcel): accepted.
        if self.choices and self.choices[0].startswith("accept:"):
            if not await self.say("offer", choice=self.choices[0]):
                return outcome
            outcome.settled = True
        # The survey, unless a person took the conversation over.
        if self.choices == ["1", "2", "3", "4", "5"]:
            if not await self.say("survey", choice=str(1 + outcome.index % 5)):
                return outcome
            comment = ANSWERS[self.language]["comment"]
            if outcome.index % 2:
                ok = await self.say("survey comment", text=comment)
            else:
                ok = await self.say("survey comment", choice=SKIP)
            if not ok:
                return outcome
            outcome.surveyed = True
        elif outcome.status != "handed_over":
            outcome.problem = f"no survey after the case: {self.answer[:160]!r}"
            return outcome
        outcome.finished = True
        return outcome


async def run_customers(
    base_url: str,
    customers: int,
    connections: int,
    *,
    batch: str = "b1",
    think_s: float = 0.0,
    time_limit: float = 600.0,
    first_index: int = 0,
    poll_s: float = 0.5,
) -> Run:
    """Every customer at once; at most `connections` requests on the wire at a time."""
    import httpx

    gate = asyncio.Semaphore(connections)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    rng = random.Random(f"{batch}-{customers}")  # think times, not secrets
    cpu_before = time.process_time()
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        people = [
            Customer(client, gate, first_index + i, batch, think_s, rng, poll_s)
            for i in range(customers)
        ]
        tasks = [asyncio.create_task(person.run()) for person in people]
        _done, pending = await asyncio.wait(tasks, timeout=time_limit)
        for task in pending:
            task.cancel()
        for person, task in zip(people, tasks, strict=True):
            if task in pending:
                person.outcome.problem = f"still talking after the {time_limit:.0f}s time limit"
            elif task.exception() is not None:
                person.outcome.problem = f"client error: {task.exception()!r}"
    duration = time.monotonic() - started
    return Run(
        outcomes=[p.outcome for p in people],
        duration_s=duration,
        client_cpu_s=time.process_time() - cpu_before,
    )


# --------------------------------------------------------------------------------------------
# The server's side: memory, CPU, and the cases in its database


def server_cpu(pgid: int) -> dict[str, tuple[str, float]]:
    """pid -> (role, CPU seconds), as complaints.py reads them, except that `concilia worker`
    (which serve starts for the jobs, among them the policies' decision on a chat's case) is
    the task worker: complaints.py knows it only by its older command line (db_worker)."""
    found = server_cpu_named(pgid)
    for pid, (role, seconds) in found.items():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if role == "web" and argv[-3:] == [b"concilia", b"worker", b""]:
            found[pid] = ("task worker", seconds)
    return found


def memory(pgid: int) -> dict[str, dict[str, float]]:
    """Per role: total RSS, largest process and process count, in MiB (from /proc/<pid>/status)."""
    found: dict[str, dict[str, float]] = {}
    for pid, (role, _seconds) in server_cpu(pgid).items():
        if role == "postgresql":
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if not match:
            continue
        mib = int(match.group(1)) / 1024
        entry = found.setdefault(role, {"rss_mib": 0.0, "largest_mib": 0.0, "processes": 0})
        entry["rss_mib"] += mib
        entry["largest_mib"] = max(entry["largest_mib"], mib)
        entry["processes"] += 1
    return found


async def watch_memory(pgid: int, peak: dict[str, dict[str, float]], stop: asyncio.Event) -> None:
    """Keep the peak RSS per role while the customers talk (sampled every half second)."""
    while not stop.is_set():
        for role, entry in memory(pgid).items():
            best = peak.setdefault(role, dict(entry))
            if entry["rss_mib"] > best["rss_mib"]:
                best.update(entry)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)


CHECK_SNIPPET = """
import json
from collections import Counter
from concilia.assistant.models import Conversation
from concilia.cases.models import Case
claimed = json.load(open({path!r}))
conversations = {{
    str(c.public_id): (c.case.reference if c.case_id else None, c.status, c.csat_score)
    for c in Conversation.objects.select_related("case").filter(public_id__in=list(claimed))
}}
per_case = Counter(
    Conversation.objects.filter(case__isnull=False).values_list("case__reference", flat=True)
)
chat_cases = set(Case.objects.filter(channel="chat").values_list("reference", flat=True))
with_case = [c for c, (ref, _s, _c) in conversations.items() if ref]
mismatched = [c for c, ref in claimed.items() if ref and conversations.get(c, (None,))[0] != ref]
print("CHECK " + json.dumps({{
    "cases": Case.objects.count(),
    "chat_cases": len(chat_cases),
    "conversations_found": len(conversations),
    "conversations_with_case": len(with_case),
    "distinct_cases": len({{conversations[c][0] for c in with_case}}),
    "cases_shared_by_conversations": sum(1 for n in per_case.values() if n > 1),
    "reference_mismatches": mismatched[:5],
    "missing_chat_cases": sorted({{r for r, _s, _c in conversations.values() if r}} - chat_cases)[:5],
    "surveys": sum(1 for _r, _s, score in conversations.values() if score),
    "statuses": dict(Counter(s for _r, s, _c in conversations.values())),
}}))
"""


def check_cases(instance: Instance, run: Run) -> dict:
    """What the database holds for the conversations the customers had."""
    claimed = {o.conversation: o.reference for o in run.outcomes if o.conversation}
    path = instance.home / "claimed.json"
    path.write_text(json.dumps(claimed))
    output = instance.manage("shell", "-c", CHECK_SNIPPET.format(path=str(path)))
    line = next((ln for ln in output.splitlines() if ln.startswith("CHECK ")), None)
    if line is None:
        raise BenchError(f"Could not check the cases:\n{output}")
    return json.loads(line[len("CHECK ") :])


def count_cases(instance: Instance) -> int:
    output = instance.manage(
        "shell",
        "-c",
        "from concilia.cases.models import Case; print('CASES', Case.objects.count())",
    )
    line = next((ln for ln in output.splitlines() if ln.startswith("CASES ")), None)
    if line is None:
        raise BenchError(f"Could not count the cases:\n{output}")
    return int(line.split()[1])


# --------------------------------------------------------------------------------------------
# One measurement


@dataclass
class Result:
    db: str
    workers: int
    customers: int
    connections: int
    think_s: float
    poll_s: float
    run: Run
    check: dict
    cases_before: int
    memory_peak: dict[str, dict[str, float]]
    memory_end: dict[str, dict[str, float]]
    cpu: dict[str, float]
    busy_pct: float
    speed_us: float
    code: str

    @property
    def finished(self) -> list[Outcome]:
        return [o for o in self.run.outcomes if o.finished]

    @property
    def failed_turns(self) -> Counter:
        requests = self.run.turns + self.run.polls
        return Counter(t.status for t in requests if not 200 <= t.status < 300)

    @property
    def cases_added(self) -> int:
        return self.check["cases"] - self.cases_before

    @property
    def case_problems(self) -> list[str]:
        """Every way the database disagrees with 'one case per finished conversation'."""
        finished = len(self.finished)
        with_reference = sum(1 for o in self.run.outcomes if o.reference)
        check = self.check
        problems = []
        if self.cases_added != with_reference:
            problems.append(
                f"{self.cases_added} cases added for {with_reference} conversations with a case"
            )
        if check["conversations_with_case"] != with_reference:
            problems.append(f"{check['conversations_with_case']} conversations hold a case")
        if check["distinct_cases"] != check["conversations_with_case"]:
            problems.append(f"only {check['distinct_cases']} distinct cases")
        if check["cases_shared_by_conversations"]:
            problems.append(f"{check['cases_shared_by_conversations']} cases shared")
        if check["reference_mismatches"] or check["missing_chat_cases"]:
            problems.append(
                f"references do not match: {check['reference_mismatches']} "
                f"{check['missing_chat_cases']}"
            )
        if finished != with_reference:
            problems.append(f"{finished} finished, {with_reference} with a reference")
        surveyed = sum(1 for o in self.run.outcomes if o.surveyed)
        if check["surveys"] != surveyed:
            problems.append(f"{check['surveys']} surveys stored for {surveyed} answered")
        return problems

    @property
    def errors(self) -> int:
        """Failed requests plus conversations that did not finish with a case."""
        return sum(self.failed_turns.values()) + (self.customers - len(self.finished))

    def latencies(self, steps: set[str] | None = None) -> dict[str, float]:
        values = sorted(t.ms for t in self.run.turns if steps is None or t.step in steps)
        return {f"p{p}": percentile(values, p) for p in (50, 95, 99)}

    def by_step(self) -> list[tuple[str, int, dict[str, float]]]:
        steps = Counter(t.step for t in self.run.turns)
        return [(s, n, self.latencies({s})) for s, n in steps.most_common()]

    def polls(self) -> dict[str, float]:
        values = sorted(t.ms for t in self.run.polls)
        return {f"p{p}": percentile(values, p) for p in (50, 95, 99)}

    def decisions(self, clock: str) -> dict[str, float]:
        """The wait for the policies' answer after the confirmation's reply, in ms: as the
        customer saw it (`shown`, polling) or on the server (`server`)."""
        values = sorted(
            v for o in self.run.outcomes if (v := getattr(o, f"decision_{clock}_ms")) is not None
        )
        summary = {f"p{p}": percentile(values, p) for p in (50, 95, 99)}
        return {"count": len(values), **summary, "max": values[-1] if values else 0.0}

    @property
    def other_pct(self) -> float:
        """Share of the machine used by processes other than the server and the client."""
        capacity = (os.cpu_count() or 1) * self.run.duration_s
        return 100 * self.cpu.get("other", 0.0) / capacity if capacity else 0.0

    @property
    def disturbed(self) -> bool:
        return self.other_pct > DISTURBED_PCT

    @property
    def turns_per_s(self) -> float:
        return len(self.run.turns) / self.run.duration_s if self.run.duration_s else 0.0

    def row(self) -> dict[str, object]:
        latency = self.latencies()
        waited = sorted(t.waited_ms for t in self.run.turns)
        return {
            "db": self.db,
            "workers": self.workers,
            "customers": self.customers,
            "connections": self.connections,
            "think_s": self.think_s,
            "conversations_finished": len(self.finished),
            "surveys_answered": sum(1 for o in self.finished if o.surveyed),
            "settled_by_policy": sum(1 for o in self.finished if o.settled),
            "handed_over": sum(1 for o in self.finished if o.status == "handed_over"),
            "finished_by_script": dict(
                Counter(f"{o.script} ({o.language})" for o in self.finished).most_common()
            ),
            "cases_added": self.cases_added,
            "case_check": self.check,
            "case_problems": self.case_problems,
            "turns": len(self.run.turns),
            "turns_per_s": round(self.turns_per_s, 1),
            "conversations_per_s": round(len(self.finished) / self.run.duration_s, 2)
            if self.run.duration_s
            else 0.0,
            "p50_ms": round(latency["p50"], 1),
            "p95_ms": round(latency["p95"], 1),
            "p99_ms": round(latency["p99"], 1),
            "max_ms": round(max((t.ms for t in self.run.turns), default=0.0), 1),
            "waited_p95_ms": round(percentile(waited, 95), 1),
            "by_step": {
                s: {"turns": n, **{k: round(v, 1) for k, v in lat.items()}}
                for s, n, lat in self.by_step()
            },
            "polls": {
                "requests": len(self.run.polls),
                **{k: round(v, 1) for k, v in self.polls().items()},
            },
            "poll_interval_s": self.poll_s,
            "decision_shown_ms": {k: round(v, 1) for k, v in self.decisions("shown").items()},
            "decision_server_ms": {k: round(v, 1) for k, v in self.decisions("server").items()},
            "errors": self.errors,
            "failed_requests": {  # by HTTP status; "transport" when no answer came
                str(k or "transport"): v for k, v in self.failed_turns.items()
            },
            "unfinished": [
                {"customer": o.index, "script": f"{o.script} ({o.language})", "why": o.problem}
                for o in self.run.outcomes
                if not o.finished
            ],
            "duration_s": round(self.run.duration_s, 2),
            "cpu_s": {k: round(v, 1) for k, v in self.cpu.items()},
            "machine_busy_pct": round(self.busy_pct, 1),
            "python_speed_us": round(self.speed_us, 2),
            "other_processes_pct": round(self.other_pct, 1),
            "disturbed": self.disturbed,
            "memory_peak": self.memory_peak,
            "memory_end": self.memory_end,
            "code": self.code,
        }


_batches = itertools.count(1)


def measure(instance: Instance, args: argparse.Namespace) -> Result:
    speed = python_speed()
    cases_before = count_cases(instance)
    cpu_before = server_cpu(instance.pgid)
    busy_before = machine_busy()
    peak: dict[str, dict[str, float]] = {}

    async def talk() -> Run:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_memory(instance.pgid, peak, stop))
        try:
            return await run_customers(
                instance.base_url,
                args.customers,
                args.connections,
                batch=f"{os.getpid()}-{next(_batches)}",
                think_s=args.think,
                time_limit=args.time_limit,
                poll_s=args.poll,
            )
        finally:
            stop.set()
            await watcher

    run = asyncio.run(talk())
    busy_after = machine_busy()
    cpu = cpu_delta(cpu_before, server_cpu(instance.pgid))
    cpu["client"] = run.client_cpu_s
    busy = busy_after[0] - busy_before[0]
    total = busy_after[1] - busy_before[1]
    cpu["other"] = max(0.0, busy / CLK_TCK - sum(cpu.values()))
    memory_end = memory(instance.pgid)
    check = check_cases(instance, run)
    return Result(
        db=instance.db,
        workers=instance.workers or default_workers(),
        customers=args.customers,
        connections=args.connections,
        think_s=args.think,
        poll_s=args.poll,
        run=run,
        check=check,
        cases_before=cases_before,
        memory_peak=peak,
        memory_end=memory_end,
        cpu=cpu,
        busy_pct=100 * busy / total if total else 0.0,
        speed_us=speed,
        code=instance.code,
    )


def default_workers() -> int:
    from concilia.core.management.commands.serve import default_workers as serve_default

    return serve_default()


def describe(result: Result) -> str:
    row = result.row()
    finished = len(result.finished)
    web_peak = result.memory_peak.get("web", {})
    lines = [
        f"database             {result.db}",
        f"server workers       {result.workers}",
        f"customers            {result.customers} at once, {result.connections} connections"
        + (f", {result.think_s:g}s think time" if result.think_s else ", no think time"),
        f"code                 {result.code}",
        f"conversations        {finished} of {result.customers} finished with a case"
        f" ({row['surveys_answered']} answered the survey, {row['handed_over']} handed over,"
        f" {row['settled_by_policy']} settled by an offer of the policy)",
        f"cases added          {result.cases_added}"
        + (
            " (one per finished conversation)"
            if not result.case_problems
            else "  MISMATCH: " + "; ".join(result.case_problems)
        ),
        f"turns                {row['turns']} in {result.run.duration_s:.1f}s = "
        f"{row['turns_per_s']} turns/s ({row['conversations_per_s']} conversations/s)",
        f"turn latency         p50 {row['p50_ms']} / p95 {row['p95_ms']} / p99 {row['p99_ms']} ms"
        f" (max {row['max_ms']}; waiting for a client connection before that: "
        f"p95 {row['waited_p95_ms']} ms)",
        f"policies' answer     {row['decision_shown_ms']['count']} cases: in the chat after"
        f" p50 {row['decision_shown_ms']['p50']} / p95 {row['decision_shown_ms']['p95']}"
        f" (max {row['decision_shown_ms']['max']}) ms, polling every {result.poll_s:g}s; written"
        f" p50 {row['decision_server_ms']['p50']} / p95 {row['decision_server_ms']['p95']} ms"
        " after the reply (server clock)",
        f"polls                {row['polls']['requests']} GETs, p50 {row['polls']['p50']} /"
        f" p95 {row['polls']['p95']} ms (not in the turn latency above)",
        f"errors               {result.errors}"
        + (f"  failed requests {row['failed_requests']}" if row["failed_requests"] else "")
        + (f"  unfinished {result.customers - finished}" if finished < result.customers else ""),
        "server RSS (peak)    "
        + ", ".join(
            f"{role} {entry['rss_mib']:.0f} MiB in {entry['processes']:.0f}"
            for role, entry in sorted(result.memory_peak.items())
        )
        + (f"; largest web process {web_peak['largest_mib']:.0f} MiB" if web_peak else ""),
        "CPU seconds          "
        + ", ".join(f"{k} {v:.1f}" for k, v in result.cpu.items() if v >= 0.05 or k == "web")
        + f" (machine {result.busy_pct:.0f}% busy)",
        f"CPU per turn         web {1000 * result.cpu.get('web', 0.0) / max(row['turns'], 1):.2f}"
        f" ms, task worker {1000 * result.cpu.get('task worker', 0.0) / max(row['turns'], 1):.2f}"
        f" ms, client {1000 * result.run.client_cpu_s / max(row['turns'], 1):.2f} ms"
        + (
            f", postgresql {1000 * result.cpu['postgresql'] / max(row['turns'], 1):.2f} ms"
            if result.cpu.get("postgresql", 0.0) >= 0.05
            else ""
        ),
        f"machine speed        {result.speed_us:.2f} µs to sum 1000 integers before the run",
        "latency by turn      "
        + "\n                     ".join(
            f"{step:<16} {n:>5} turns  p50 {lat['p50']:6.1f}  p95 {lat['p95']:6.1f} ms"
            for step, n, lat in result.by_step()
        ),
    ]
    if result.disturbed:
        lines.append(
            f"WARNING              other processes used {result.other_pct:.0f}% of the machine "
            "during this run: its figures are disturbed, run it again on a quiet machine"
        )
    why = Counter(o.problem for o in result.run.outcomes if not o.finished)
    for problem, n in why.most_common(5):
        lines.append(f"unfinished           {n}x {problem}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line


@contextlib.contextmanager
def running(db: str, workers: int | None, args: argparse.Namespace) -> Iterator[Instance]:
    """A fresh Concilia: home (and database), demo data, `concilia serve`; always stopped."""
    instance = Instance(db, workers, args)
    # Every simulated customer comes from 127.0.0.1: the per-address limits are off for the run.
    instance.env["CONCILIA_CHAT_START_RATE"] = "0"
    instance.env["CONCILIA_CHAT_MESSAGE_RATE"] = "0"
    try:
        instance.create_database()
        instance.manage("demo")
        instance.start()
        yield instance
    finally:
        instance.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200, help="customers talking at once")
    parser.add_argument(
        "--connections", type=int, default=16, help="the client's connection limit (default 16)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="`concilia serve --workers` (default: serve's)"
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a customer waits before each message (uniform 0 to twice that; default 0)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.5,
        help="seconds between a waiting customer's reads of new messages, as the chat widget"
        " polls while the policies decide (default 0.5)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=20,
        help="conversations before the measured ones (every web process loads its models)",
    )
    parser.add_argument(
        "--pg-url",
        default="postgres://postgres@127.0.0.1:5432",
        help="PostgreSQL server (trust auth), without a database name",
    )
    parser.add_argument(
        "--pg-db", default="concilia_bench_chat", help="database created and dropped for the run"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="seconds to wait at most for an idle machine before measuring (0: do not wait)",
    )
    parser.add_argument(
        "--retry-disturbed",
        type=int,
        default=2,
        metavar="N",
        help="measure again (up to N times, new customers on the same server) when other "
        f"processes used more than {DISTURBED_PCT:.0f}%% of the machine",
    )
    parser.add_argument("--time-limit", type=float, default=600, help="seconds for all customers")
    parser.add_argument("--start-timeout", type=float, default=90)
    parser.add_argument("--keep", action="store_true", help="keep CONCILIA_HOME (serve.log)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    args.no_worker = False  # complaints.Instance reads it: the task worker runs, as for a user
    if min(args.customers, args.connections) < 1 or min(args.warmup, args.think) < 0:
        parser.error("--customers and --connections must be positive")
    if args.poll <= 0:
        parser.error("--poll must be positive")
    if args.pg_db.lower() in PROTECTED_DATABASES or not re.fullmatch(
        r"[a-z_][a-z0-9_]*", args.pg_db
    ):
        parser.error(f"refusing to use {args.pg_db!r} as the throw-away benchmark database")
    try:
        import httpx  # noqa: F401
    except ImportError:
        print('httpx is missing: pip install -e ".[bench]"', file=sys.stderr)
        return 2

    print(
        f"date                 {time.strftime('%Y-%m-%d %H:%M %Z')}\n"
        f"machine              {os.cpu_count()} CPUs\n"
        f"code                 {code_version()}\n"
        "rate limits          CONCILIA_CHAT_START_RATE=0, CONCILIA_CHAT_MESSAGE_RATE=0 (off)\n",
        flush=True,
    )
    result: Result | None = None
    disturbed: list[Result] = []  # earlier attempts, measured again
    try:
        with running(args.db, args.workers, args) as instance:
            if args.warmup:
                warm = asyncio.run(
                    run_customers(
                        instance.base_url,
                        args.warmup,
                        min(args.connections, args.warmup),
                        batch=f"{os.getpid()}-warm",
                        time_limit=args.time_limit,
                        first_index=10_000,
                        poll_s=args.poll,
                    )
                )
                unfinished = [o.problem for o in warm.outcomes if not o.finished]
                if unfinished:
                    print(f"warm-up: {len(unfinished)} unfinished: {unfinished[:3]}", flush=True)
            for attempt in range(args.retry_disturbed + 1):
                if args.quiet_wait:
                    busy = wait_for_quiet(args.quiet_wait)
                    print(f"machine busy before the run: {busy:.0f}%", flush=True)
                result = measure(instance, args)
                print(describe(result), end="\n\n", flush=True)
                if not result.disturbed or attempt == args.retry_disturbed:
                    break
                disturbed.append(result)
                print("measuring again (disturbed)\n", flush=True)
            if result.errors:
                errors = [ln for ln in instance.log(1_000_000).splitlines() if "rror" in ln]
                print("server log, last errors:\n  " + "\n  ".join(errors[-10:]), file=sys.stderr)
    except BenchError as exc:
        print(f"benchmark error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.json and result is not None:
            row = {**result.row(), "disturbed_attempts": [r.row() for r in disturbed]}
            args.json.write_text(json.dumps(row, indent=2) + "\n")
    return 1 if result.errors or result.case_problems else 0


if __name__ == "__main__":
    sys.exit(main())
