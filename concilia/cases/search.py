"""Free text over a case's subject, description and every message, found through a blind index.

The meaning is a case-insensitive substring match (every alphabet's case folded, accents count:
"devolucion" does not find "devolución"), internal notes included. The texts are encrypted
(docs/encryption.md), so the database cannot compare them: `cases_textgram` (TextGram) holds, for
each case, the keyed hash of every distinct three-character piece (trigram) of its folded texts.

A search for three characters or more hashes the query's trigrams with the same key, takes the
cases that have them all (starting with the rarest hash, so a common piece costs little), keeps
those the caller's filter allows, then decrypts each candidate and checks the real substring:
trigrams found apart from each other, or in different texts, and hash collisions make false
candidates, which that check removes, so the result is exact. Shorter text has no trigram: the
SHORT_SCAN_LIMIT most recently active cases of the caller's filter are decrypted and scanned.

The index is written from Python (the database cannot compute the hashes): `Case.save` and
`Message.save` call `index_cases`, as do the paths that write without save (bulk_create of
messages, anonymising). A text changed with QuerySet.update() is not indexed until
`index_cases` runs for its case (or `concilia search reindex`); a piece left over from an older
text only makes a false candidate, never a wrong result. After an index key rotation
(`concilia keys rotate-index`) the rotation job writes every case again with the new key; until
then a search looks up both keys' hashes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db import connections, router
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from concilia.cases.models import Case, Message, TextGram
from concilia.core import crypto

logger = logging.getLogger(__name__)

PURPOSE = "case-text-gram"  # keeps these hashes apart from every other blind index
MIN_INDEXED_LENGTH = crypto.GRAM_LENGTH
# Text shorter than a trigram is looked for in this many cases of the filter, latest activity first.
SHORT_SCAN_LIMIT = 2000
# A long query is looked up by this many of its trigrams (spread over it); the check does the rest.
MAX_QUERY_GRAMS = 12
# How far each trigram's cases are counted to find the rarest: beyond this, "common" is enough.
RARITY_CAP = 5000
BATCH = 500
# Candidates checked per statement (SQLite allows 32,766 parameters since 3.32).
VERIFY_BATCH = 2000
# Beyond this many ids, matching_case_ids answers with a subquery instead of a parameter list.
MAX_LISTED_IDS = 500

_TABLE = TextGram._meta.db_table


def _connection(write: bool = False) -> Any:
    return connections[router.db_for_write(TextGram) if write else router.db_for_read(TextGram)]


def _chunks(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- writing the index ----------------------------------------------------------------------


def case_texts(case_ids: Iterable[int]) -> dict[int, list[str]]:
    """The plain texts of each case: subject, description, then every message's body."""
    ids = list(case_ids)
    texts: dict[int, list[str]] = {}
    for chunk in _chunks(ids):
        for pk, subject, description in Case.objects.filter(pk__in=chunk).values_list(
            "pk", "subject", "description"
        ):
            texts[pk] = [subject or "", description or ""]
        for case_id, body in Message.objects.filter(case_id__in=chunk).values_list(
            "case_id", "body"
        ):
            if case_id in texts:
                texts[case_id].append(body or "")
    return texts


def text_hashes(texts: Iterable[str], *, key: bytes | None = None) -> set[int]:
    """The gram hashes of a case's texts (each text cut on its own: no piece spans two)."""
    pieces: set[str] = set()
    for text in texts:
        pieces |= crypto.grams(crypto.fold_text(text))
    return crypto.gram_hashes(pieces, purpose=PURPOSE, key=key)


def index_cases(case_ids: Iterable[int]) -> int:
    """Write the gram index of these cases as their texts are now, with the current index key:
    the pieces they no longer have are deleted, the new ones added. Idempotent. Returns how many
    cases were looked at."""
    ids = sorted({pk for pk in case_ids if pk is not None})
    connection = _connection(write=True)
    for chunk in _chunks(ids, 100):
        texts = case_texts(chunk)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT case_id, gram FROM {_TABLE} "  # noqa: S608 - our table
                f"WHERE case_id IN ({', '.join(['%s'] * len(chunk))})",
                chunk,
            )
            stored: dict[int, set[int]] = {}
            for case_id, gram in cursor.fetchall():
                stored.setdefault(case_id, set()).add(gram)
            gone: list[tuple[int, int]] = []
            new: list[tuple[int, int]] = []
            for pk in chunk:
                wanted = text_hashes(texts[pk]) if pk in texts else set()
                have = stored.get(pk, set())
                gone += [(pk, gram) for gram in have - wanted]
                new += [(pk, gram) for gram in wanted - have]
            _delete(cursor, gone)
            _insert(cursor, new)
    return len(ids)


def add_texts(case_id: int, texts: Iterable[str]) -> None:
    """Add the pieces of new texts (a new case's, a new message's) to a case's index: nothing
    to read or take away, since the case's other texts only ever add pieces of their own."""
    grams = text_hashes(texts)
    if grams:
        with _connection(write=True).cursor() as cursor:
            _insert(cursor, [(case_id, gram) for gram in sorted(grams)])


def _delete(cursor: Any, rows: list[tuple[int, int]]) -> None:
    by_case: dict[int, list[int]] = {}
    for case_id, gram in rows:
        by_case.setdefault(case_id, []).append(gram)
    for case_id, grams in by_case.items():
        for chunk in _chunks(grams):
            cursor.execute(
                f"DELETE FROM {_TABLE} WHERE case_id = %s "  # noqa: S608 - our table
                f"AND gram IN ({', '.join(['%s'] * len(chunk))})",
                [case_id, *chunk],
            )


def _insert(cursor: Any, rows: list[tuple[int, int]]) -> None:
    for chunk in _chunks(rows):
        # Two writers of one case's index at once may both add a piece: either is right.
        cursor.execute(
            f"INSERT INTO {_TABLE} (case_id, gram) VALUES "  # noqa: S608 - our table
            + ", ".join(["(%s, %s)"] * len(chunk))
            + " ON CONFLICT DO NOTHING",
            [value for row in chunk for value in row],
        )


def reindex_batch(*, after: Any) -> tuple[int, Any]:
    """Index again (current key) up to BATCH cases with an id after `after`: a step of
    `concilia search reindex` and of the index key rotation job. Returns how many were done and
    the last id (None when every case is done)."""
    ids = list(
        Case.objects.filter(pk__gt=after or 0).order_by("pk").values_list("pk", flat=True)[:BATCH]
    )
    index_cases(ids)
    return len(ids), (ids[-1] if len(ids) == BATCH else None)


def reindex_all(progress: Callable[[int], None] | None = None) -> int:
    """Index every case again; how many. `progress(count)` hears of each batch."""
    done, after = 0, None
    while True:
        count, after = reindex_batch(after=after)
        done += count
        if progress:
            progress(count)
        if after is None:
            return done


# --- searching ------------------------------------------------------------------------------


def matching_case_ids(text: str, among: QuerySet[Case] | None = None) -> list[int] | RawSQL:
    """The ids of the cases whose subject, description or any message (internal notes included)
    contains `text`, ignoring case, for `cases.filter(pk__in=...)`. `among`, the cases the caller
    will show (the queue's filters), spares checking the others: pass it when there is one."""
    folded = crypto.fold_text(text)
    cases = among if among is not None else Case.objects.all()
    return _as_subquery(sorted(_containing(folded, cases, _candidates(folded, cases))))


def candidate_case_ids(text: str, among: QuerySet[Case] | None = None) -> list[int] | RawSQL:
    """What matching_case_ids checks: every case that may contain `text` (a superset), for a
    caller that checks only the rows it shows, with `containing`."""
    folded = crypto.fold_text(text)
    return _as_subquery(_candidates(folded, among if among is not None else Case.objects.all()))


def containing(text: str, cases: list[Case]) -> set[int]:
    """The ids of those of `cases` (loaded, so their texts are decrypted) whose subject,
    description or a message contains `text`, ignoring case: one statement for the messages."""
    folded = crypto.fold_text(text)
    if not folded:
        return {case.pk for case in cases}
    found = {
        case.pk
        for case in cases
        if folded in crypto.fold_text(case.subject or "")
        or folded in crypto.fold_text(case.description or "")
    }
    return found | _in_messages(folded, [case.pk for case in cases if case.pk not in found])


def _candidates(folded: str, cases: QuerySet[Case]) -> list[int]:
    if not folded:
        return []
    if len(folded) < MIN_INDEXED_LENGTH:
        recent = cases.order_by("-last_activity_at", "-pk").values_list("pk", flat=True)
        return sorted(recent[:SHORT_SCAN_LIMIT])
    return sorted(_indexed_candidates(folded))


def _query_hashes(folded: str, key: bytes) -> list[int]:
    pieces = sorted(crypto.grams(folded), key=folded.index)
    if len(pieces) > MAX_QUERY_GRAMS:  # spread over the whole query, both ends included
        step = (len(pieces) - 1) / (MAX_QUERY_GRAMS - 1)
        pieces = [pieces[round(i * step)] for i in range(MAX_QUERY_GRAMS)]
    return sorted(crypto.gram_hashes(set(pieces), purpose=PURPOSE, key=key))


def _indexed_candidates(folded: str) -> set[int]:
    """The cases that have every looked-up piece of the query, under any index key in force."""
    found: set[int] = set()
    with _connection().cursor() as cursor:
        for key in crypto.index_keys():
            found |= _having_all(cursor, _query_hashes(folded, key))
    return found


def _having_all(cursor: Any, hashes: list[int]) -> set[int]:
    """The cases that have every hash: two statements, whatever the query's length. The first
    counts each hash's cases (up to RARITY_CAP); the second walks the rarest hash's cases and
    keeps those that have each other one (an index seek on (gram, case_id) per check)."""
    counting = " UNION ALL ".join(
        f"SELECT {i}, (SELECT COUNT(*) FROM (SELECT 1 FROM {_TABLE} "  # noqa: S608 - our table
        "WHERE gram = %s LIMIT %s) AS g)"
        for i in range(len(hashes))
    )
    cursor.execute(counting, [value for gram in hashes for value in (gram, RARITY_CAP)])
    counts = {hashes[i]: count for i, count in cursor.fetchall()}
    if not all(counts.values()):
        return set()
    rarest, *others = sorted(hashes, key=counts.__getitem__)
    exists = (
        f" AND EXISTS (SELECT 1 FROM {_TABLE} AS o WHERE o.gram = %s AND o.case_id = r.case_id)"  # noqa: S608
    )
    having = exists * len(others)
    cursor.execute(
        f"SELECT r.case_id FROM {_TABLE} AS r WHERE r.gram = %s{having}",  # noqa: S608
        [rarest, *others],
    )
    return {row[0] for row in cursor.fetchall()}


def _containing(folded: str, cases: QuerySet[Case], candidates: list[int]) -> set[int]:
    """The candidates that `cases` (the caller's filter) keeps and whose decrypted text really
    contains the folded query: two statements per VERIFY_BATCH candidates."""
    if not folded:
        return set()
    found: set[int] = set()
    for chunk in _chunks(candidates, VERIFY_BATCH):
        kept = cases.filter(pk__in=chunk).order_by().values_list("pk", "subject", "description")
        rest = []
        for pk, subject, description in kept:
            texts = (crypto.fold_text(subject or ""), crypto.fold_text(description or ""))
            if any(folded in text for text in texts):
                found.add(pk)
            else:
                rest.append(pk)
        found |= _in_messages(folded, rest)
    return found


def _in_messages(folded: str, case_ids: list[int]) -> set[int]:
    """Those of the cases with a message that contains the folded query."""
    found: set[int] = set()
    for chunk in _chunks(case_ids, VERIFY_BATCH):
        for case_id, body in Message.objects.filter(case_id__in=chunk).values_list(
            "case_id", "body"
        ):
            if case_id not in found and folded in crypto.fold_text(body or ""):
                found.add(case_id)
    return found


def _as_subquery(ids: list[int]) -> list[int] | RawSQL:
    """A short list as it is; a long one as a subquery of literal integers (ours, from the
    database), since SQLite limits the parameters of one statement."""
    if len(ids) <= MAX_LISTED_IDS:
        return ids
    table = Case._meta.db_table
    listed = ", ".join(str(int(pk)) for pk in ids)
    return RawSQL(f"SELECT id FROM {table} WHERE id IN ({listed})", [])  # noqa: S608, S611
