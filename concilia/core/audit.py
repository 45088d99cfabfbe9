"""The audit log: `record` appends one hash-chained entry for an access to or a change of personal
data, or for a decision; `verify` walks the chain and finds its first broken link.

    audit.record(AuditAction.VIEW, case=case)
    audit.record(AuditAction.CHANGE, target=customer, case=case, fields=["phone"], actor=agent)

Who and from where come from the request being served (AuditContextMiddleware binds it; the API
token that authenticated it, if any, is named) unless the caller names the actor; without a
request the actor is the system. Call `record` as the last write of a transaction: it holds the
chain's head until commit, which is what makes entries of parallel requests one chain.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, transaction
from django.db.models import Subquery
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from concilia.core.models import AuditAction, AuditActorKind, AuditChainHead, AuditEntry
from concilia.core.throttling import client_address

# Shorthands for the call sites: audit.record(audit.VIEW, case=case).
VIEW = AuditAction.VIEW
LIST = AuditAction.LIST
CREATE = AuditAction.CREATE
CHANGE = AuditAction.CHANGE
MERGE = AuditAction.MERGE
DOWNLOAD = AuditAction.DOWNLOAD
EXPORT = AuditAction.EXPORT
ERASE = AuditAction.ERASE
DECIDE = AuditAction.DECIDE
OVERRIDE = AuditAction.OVERRIDE
AGREE = AuditAction.AGREE
SIGN_IN = AuditAction.SIGN_IN
SIGN_OUT = AuditAction.SIGN_OUT
SIGN_IN_FAILED = AuditAction.SIGN_IN_FAILED
LOCK_OUT = AuditAction.LOCK_OUT

# Where a signed-in customer's id is kept in the session (customers.auth.SESSION_KEY; core
# imports no higher app): their requests are theirs when no actor is named.
CUSTOMER_SESSION_KEY = "concilia_customer_id"

# The hash the first entry links to, and the one row holding the chain's last entry.
GENESIS = "0" * 64
HEAD_PK = 1

# What each entry's hash covers: everything but the hash itself.
HASHED = (
    "seq",
    "at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "case_reference",
    "customer_pk",
    "fields",
    "detail",
    "ip_address",
    "user_agent",
    "channel",
    "prev_hash",
)

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "concilia_audit_request", default=None
)


@contextmanager
def serving(request: HttpRequest) -> Iterator[None]:
    """Entries recorded meanwhile are attributed to this request's person, address and channel."""
    bound = _request.set(request)
    try:
        yield
    finally:
        _request.reset(bound)


# Recording --------------------------------------------------------------------------------


def record(
    action: str,
    *,
    target: Any = None,
    case: Any = None,
    customer: Any = None,
    fields: Iterable[str] | None = None,
    actor: Any = None,
    detail: Mapping[str, Any] | None = None,
    listed: Iterable[Any] | None = None,
    attachments: Sized = (),
) -> AuditEntry:
    """Append an entry: `action` (AuditAction) done by `actor` to `target` (default: the case;
    a model class for a whole table, such as the audit log itself).

    `fields` names the personal fields touched (default: those the target's model declares, and
    its customer's); `customer` is whose data it is (default: the case's, or the customer acting);
    `detail` adds identifiers (a decision's outcome, an event's id), never personal values;
    `attachments` are files stored with the target (named as a field, and counted).
    A page listing rows (`target` their model, `listed` the rows) is one entry naming the rows
    shown, its fields by default those of the rows' customers.
    """
    if action not in AuditAction.values:
        raise ValueError(f"Unknown audit action {action!r}")
    request = _request.get()
    target = case if target is None else target
    kind, actor_id, label = _who(actor, request)
    names = _declared_fields(target, own=listed is None) if fields is None else fields
    if listed is not None:
        detail = {**(detail or {}), "shown": [getattr(row, "reference", row.pk) for row in listed]}
    if attachments:
        names = [*names, "attachments"]
        detail = {**(detail or {}), "attachments": len(attachments)}
    return _append(
        {
            "actor_kind": kind,
            "actor_id": actor_id,
            "actor_label": _text(label, 200),
            "action": action,
            "object_type": target._meta.label_lower if target is not None else "",
            "object_id": _object_id(target),
            "case_reference": getattr(case, "reference", "") or "",
            "customer_pk": _customer_pk(customer, case, target, kind, actor_id),
            "fields": [str(name) for name in dict.fromkeys(names)],
            "detail": _plain(dict(detail or {})),
            "ip_address": _text(client_address(request), 64) if request else "",
            "user_agent": _text(request.headers.get("User-Agent", ""), 300) if request else "",
            "channel": _channel(request),
        }
    )


def _append(content: dict[str, Any]) -> AuditEntry:
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        seq, previous = _locked_head(cursor)
        entry = AuditEntry(seq=seq + 1, at=timezone.now(), prev_hash=previous, **content)
        entry.hash = entry_hash({name: getattr(entry, name) for name in HASHED})
        entry.save(force_insert=True)
        cursor.execute(_MOVE_HEAD, [entry.seq, entry.hash, HEAD_PK])
    return entry


def lock_chain() -> None:
    """Take the audit chain's head now, before another shared row (a team's round robin): the
    head is locked by nearly every transaction until it commits, so one that locked some row
    first and the head second deadlocked against one that held the head and wanted that row
    (bench/peer found it: open_case against the triage job). Taking the head first keeps one
    order for everyone. Outside a transaction there is nothing to hold."""
    if connection.in_atomic_block and connection.features.has_select_for_update:
        with connection.cursor() as cursor:
            _locked_head(cursor)


# Plain SQL: appending is on every page that shows personal data, so it is kept cheap.
_HEAD = "SELECT seq, hash FROM core_auditchainhead WHERE id = %s"
_MOVE_HEAD = "UPDATE core_auditchainhead SET seq = %s, hash = %s WHERE id = %s"


def _object_id(target: Any) -> str:
    if target is None or isinstance(target, type):  # a model itself: the whole table
        return ""
    return "" if target.pk is None else str(target.pk)


def _locked_head(cursor: Any) -> tuple[int, str]:
    """The last entry's number and hash, the row locked until commit (SQLite: the whole
    database is, from the transaction's start)."""
    locking = " FOR UPDATE" if connection.features.has_select_for_update else ""
    cursor.execute(_HEAD + locking, [HEAD_PK])
    row = cursor.fetchone()
    if row is None:
        # Only after a flush (tests): the migration writes the row. Two may race: one creates it.
        last = AuditEntry.objects.order_by("-seq").values("seq", "hash").first()
        AuditChainHead.objects.get_or_create(
            pk=HEAD_PK, defaults=last or {"seq": 0, "hash": GENESIS}
        )
        cursor.execute(_HEAD + locking, [HEAD_PK])
        row = cursor.fetchone()
    return int(row[0]), str(row[1])


def entry_hash(values: Mapping[str, Any]) -> str:
    """SHA-256 of the entry's canonical JSON (which includes the previous entry's hash)."""
    document = {name: values[name] for name in HASHED}
    document["at"] = values["at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _who(actor: Any, request: HttpRequest | None) -> tuple[str, str, str]:
    """(kind, id, label) of whoever acts: the named actor, else the request's token or user."""
    token = _token_of(request)
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = token or (user if user is not None and user.is_authenticated else None)
        customer_id = _session_customer(request)
        if actor is None and customer_id is not None:
            return AuditActorKind.CUSTOMER, str(customer_id), f"customer {customer_id}"
    model = getattr(getattr(actor, "_meta", None), "label_lower", "")
    if model == settings.AUTH_USER_MODEL.lower():
        if token is None or token.user_id != actor.pk:
            return AuditActorKind.STAFF, str(actor.pk), actor.get_username()
        actor, model = token, "accounts.apitoken"  # the person, acting through their token
    if model == "accounts.apitoken":
        label = f"{actor.user.get_username()} · {actor.name} ({actor.prefix}…)"
        return AuditActorKind.TOKEN, str(actor.pk), label
    if model == "customers.customer":
        return AuditActorKind.CUSTOMER, str(actor.pk), f"customer {actor.pk}"
    return AuditActorKind.SYSTEM, "", "system"


def _session_customer(request: HttpRequest) -> int | None:
    session = getattr(request, "session", None)
    value = session.get(CUSTOMER_SESSION_KEY) if session is not None else None
    return int(value) if isinstance(value, int) else None


def _token_of(request: HttpRequest | None) -> Any:
    token = getattr(request, "auth", None)  # set by the API's token authentication
    return token if getattr(token, "_meta", None) is not None else None


def _customer_pk(customer: Any, case: Any, target: Any, kind: str, actor_id: str) -> int | None:
    """Whose personal data it is: the named customer, the case's, the target's, or the actor."""
    if customer is not None:
        return int(getattr(customer, "pk", customer))
    if getattr(case, "customer_id", None) is not None:
        return int(case.customer_id)
    if isinstance(target, type):  # a whole table: nobody's in particular
        return int(actor_id) if kind == AuditActorKind.CUSTOMER else None
    if getattr(getattr(target, "_meta", None), "label_lower", "") == "customers.customer":
        return int(target.pk)
    return int(actor_id) if kind == AuditActorKind.CUSTOMER else None


def _declared_fields(target: Any, *, own: bool = True) -> list[str]:
    """The personal fields the target's model declares (unless not `own`), and its customer's."""
    if target is None:
        return []
    names = list(getattr(target, "PERSONAL_FIELDS", ())) if own else []
    try:
        related = target._meta.get_field("customer").related_model
    except FieldDoesNotExist:
        return names
    return names + [f"customer.{name}" for name in getattr(related, "PERSONAL_FIELDS", ())]


def _channel(request: HttpRequest | None) -> str:
    if request is None:
        return "system"
    return "api" if request.path.startswith("/api/") else "web"


def _text(value: str, limit: int) -> str:
    """Without control characters (PostgreSQL refuses NUL; a user agent is anyone's to write)."""
    return "".join(ch for ch in str(value) if ch.isprintable())[:limit]


def _plain(value: Any) -> Any:
    """JSON that reads back exactly as written on every database (no floats, no NUL)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, bool | int):
        return value
    return str(value).replace("\x00", "")


# Verifying --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """The first link of the chain that does not hold: at which entry, and what is wrong."""

    seq: int
    problem: str  # "changed", "relinked", "missing" or "head"
    message: str


@dataclass(frozen=True)
class ChainStatus:
    checked: int  # entries walked
    verified_to: int  # the last entry whose link holds (0: none)
    head_hash: str  # its hash: keep it elsewhere to check later that nothing before was rewritten
    broken: Break | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify(
    *,
    after: tuple[int, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ChainStatus:
    """Walk the chain in order (from the start, or from an entry already verified, `after` =
    (seq, hash)) up to its head as it is now, and stop at the first broken link."""
    seq, previous = after or (0, GENESIS)
    head = _head_and_last()
    end = head["seq"] if head else None
    rows = AuditEntry.objects.filter(seq__gt=seq).order_by("seq").values(*HASHED, "hash")
    if end is not None:
        rows = rows.filter(seq__lte=end)  # entries written meanwhile are left for next time
    checked = 0
    for row in rows.iterator(chunk_size=2000):
        problem = _link_problem(row, seq, previous)
        if problem is not None:
            return ChainStatus(checked, seq, previous, problem)
        seq, previous = row["seq"], row["hash"]
        checked += 1
        if progress is not None and checked % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(checked % 1000)
    problem = _head_problem(head, seq, previous)
    return ChainStatus(checked, seq, previous, problem)


def _link_problem(row: Mapping[str, Any], seq: int, previous: str) -> Break | None:
    number = row["seq"]
    if number != seq + 1:
        return Break(
            seq + 1,
            "missing",
            _("Entries %(first)d to %(last)d are missing: they were deleted.")
            % {"first": seq + 1, "last": number - 1},
        )
    actual = entry_hash(row)
    if actual != row["hash"]:
        return Break(
            number,
            "changed",
            _(
                "Entry %(seq)d was changed after it was written: its content hashes to %(actual)s, "
                "not to the stored %(stored)s."
            )
            % {"seq": number, "actual": actual[:16], "stored": row["hash"][:16]},
        )
    if row["prev_hash"] != previous:
        return Break(
            number,
            "relinked",
            _(
                "Entry %(seq)d does not follow entry %(before)d: it links to %(linked)s but entry "
                "%(before)d hashes to %(previous)s, so entry %(before)d was rewritten."
            )
            % {
                "seq": number,
                "before": seq,
                "linked": row["prev_hash"][:16],
                "previous": previous[:16],
            },
        )
    return None


def _head_and_last() -> dict[str, Any] | None:
    """The head, and the last entry's number, read together (one statement sees one state)."""
    last = AuditEntry.objects.order_by("-seq").values("seq")[:1]
    return (
        AuditChainHead.objects.filter(pk=HEAD_PK)
        .annotate(last=Subquery(last))
        .values("seq", "hash", "last")
        .first()
    )


def _head_problem(head: Mapping[str, Any] | None, seq: int, previous: str) -> Break | None:
    if head is None:
        if seq == 0:
            return None  # an empty log
        return Break(seq, "head", _("The chain's head row is missing."))
    if head["last"] is not None and head["last"] > head["seq"]:
        return Break(
            head["seq"] + 1,
            "head",
            _("The chain's head was set back to entry %(seq)d; entries up to %(last)d exist.")
            % {"seq": head["seq"], "last": head["last"]},
        )
    if head["seq"] > seq:
        return Break(
            seq + 1,
            "missing",
            _("Entries %(first)d to %(last)d are missing: they were deleted from the end.")
            % {"first": seq + 1, "last": head["seq"]},
        )
    if head["hash"] != previous:
        return Break(
            seq,
            "head",
            _("The chain's head names a hash other than that of its last entry %(seq)d.")
            % {"seq": seq},
        )
    return None


# Where the last verification got to, so that a page can check only what was added since.
CHECKPOINT_KEY = "concilia:audit:verified"


def remember(status: ChainStatus) -> None:
    """Keep a sound chain's end as the point later checks start from."""
    if status.ok:
        cache.set(CHECKPOINT_KEY, (status.verified_to, status.head_hash), None)


def verify_since_last() -> ChainStatus:
    """Check the entries added since the last verification (all of them the first time): cheap
    enough for a page. A break found that way is confirmed by walking the whole chain, which
    `concilia audit verify` always does."""
    checkpoint = cache.get(CHECKPOINT_KEY)
    status = verify(after=tuple(checkpoint) if checkpoint else None)
    if not status.ok and checkpoint:
        status = verify()  # the checkpoint may be stale (a database restored from a backup)
    remember(status)
    return status
