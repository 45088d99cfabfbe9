"""Similar past cases: the closed cases most like this one, with how they were resolved.

Candidates are the agent's visible closed cases of the same category (the most recent few
hundred) and the customer's own earlier cases. They are ranked by the similarity of their text
(TF-IDF cosine over subject and description, accents folded so Spanish and English words match
however they are typed) plus the facts they share: same kind, a similar amount, the same customer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from concilia.cases.access import visible_cases
from concilia.cases.models import ActorKind, Case, Message, Outcome, Status

POOL = 300  # recent closed cases of the category compared with each case
SHOWN = 5
MIN_SCORE = 0.12


@dataclass
class Similar:
    case: Case
    score: float
    reasons: list[str] = field(default_factory=list)
    resolution: str = ""  # the last reply the customer received
    days_to_close: int | None = None


def _text(case: Case) -> str:
    return f"{case.subject}\n{case.description}\n{case.desired_resolution}"


def _amount_close(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None or not a or not b:
        return False
    return abs(a - b) <= Decimal("0.25") * max(abs(a), abs(b))


def _text_scores(case: Case, others: list[Case]) -> list[float]:
    from sklearn.feature_extraction.text import TfidfVectorizer  # a heavy import: only when used

    vectorizer = TfidfVectorizer(strip_accents="unicode", sublinear_tf=True, min_df=1)
    try:
        matrix = vectorizer.fit_transform([_text(case), *(_text(o) for o in others)])
    except ValueError:  # nothing but stop characters in every text
        return [0.0] * len(others)
    # Rows are L2-normalised, so the dot product is the cosine.
    return (matrix[1:] @ matrix[0].T).toarray().ravel().tolist()


def similar_cases(case: Case, user: Any, limit: int = SHOWN) -> list[Similar]:
    closed = (
        visible_cases(user)
        .filter(status=Status.CLOSED)
        .exclude(outcome=Outcome.DUPLICATE)
        .exclude(pk=case.pk)
        .select_related("category")
    )
    pool = list(closed.filter(category=case.category_id).order_by("-created_at")[:POOL])
    seen = {c.pk for c in pool}
    pool += [
        c
        for c in closed.filter(Q(customer=case.customer_id)).order_by("-created_at")[:20]
        if c.pk not in seen
    ]
    if not pool:
        return []
    ranked = []
    for other, text in zip(pool, _text_scores(case, pool), strict=True):
        reasons = []
        score = 0.8 * text
        if other.customer_id == case.customer_id:
            score += 0.15
            reasons.append(_("same customer"))
        if other.category_id == case.category_id:
            reasons.append(_("same category"))
        if other.kind == case.kind:
            score += 0.03
        if _amount_close(other.amount, case.amount):
            score += 0.1
            reasons.append(_("similar amount"))
        if text >= 0.2:
            reasons.insert(0, _("similar wording"))
        if score >= MIN_SCORE:
            ranked.append(Similar(case=other, score=score, reasons=reasons))
    ranked.sort(key=lambda s: (-s.score, -s.case.pk))
    ranked = ranked[:limit]
    replies: dict[int, str] = {}
    for message in Message.objects.filter(
        case__in=[s.case.pk for s in ranked], author_kind=ActorKind.STAFF, internal=False
    ).order_by("created_at", "pk"):
        replies[message.case_id] = message.body  # the last one wins
    for similar in ranked:
        similar.resolution = replies.get(similar.case.pk, "")
        if similar.case.closed_at:
            delta: dt.timedelta = similar.case.closed_at - similar.case.created_at
            similar.days_to_close = delta.days
    return ranked
