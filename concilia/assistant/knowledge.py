"""The knowledge base: frequent questions answered without a case, matched by text similarity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import F
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

from concilia.assistant.models import KnowledgeArticle
from concilia.core.memo import remember_for

if TYPE_CHECKING:
    from concilia.assistant.models import Conversation

# Why a customer's message went unanswered: a question no article matches, or a message whose
# category the NLU could not tell.
NO_ANSWER = "no_answer"
NOT_UNDERSTOOD = "not_understood"

# Below this cosine similarity a question is not taken as the article's.
MATCH_THRESHOLD = 0.42


@dataclass(frozen=True)
class Match:
    article_id: int
    score: float


class _Index:
    def __init__(self, rows: list[tuple[int, str]]):
        self.ids = [article_id for article_id, _ in rows]
        self.vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, strip_accents="unicode"
        )
        self.matrix = self.vectorizer.fit_transform([text for _, text in rows]) if rows else None

    def best(self, text: str) -> Match | None:
        if self.matrix is None or not text.strip():
            return None
        scores = linear_kernel(self.vectorizer.transform([text]), self.matrix).ravel()
        position = int(scores.argmax())
        return Match(article_id=self.ids[position], score=float(scores[position]))


@remember_for(seconds=10)
def _index() -> _Index:
    rows: list[tuple[int, str]] = []
    for article in KnowledgeArticle.objects.filter(active=True):
        phrasings = [article.question_es, article.question_en, *article.phrasings.splitlines()]
        rows.extend((article.pk, p.strip().lower()) for p in phrasings if p.strip())
    return _Index(rows)


def find_answer(text: str, *, threshold: float = MATCH_THRESHOLD) -> KnowledgeArticle | None:
    """The active article that answers this question, or None when none is close enough."""
    match = _index().best(text.lower())
    if match is None or match.score < threshold:
        return None
    return KnowledgeArticle.objects.filter(pk=match.article_id, active=True).first()


def count_shown(article: KnowledgeArticle) -> None:
    KnowledgeArticle.objects.filter(pk=article.pk).update(shown_count=F("shown_count") + 1)


def count_feedback(article_id: int, helpful: bool) -> None:
    field = "helpful_count" if helpful else "unhelpful_count"
    KnowledgeArticle.objects.filter(pk=article_id).update(**{field: F(field) + 1})


# Higher apps that collect unanswered questions (concilia.feedback) register here in their
# ready(): the assistant imports none of them.
UnansweredListener = Callable[..., None]
_unanswered_listeners: list[UnansweredListener] = []


def on_unanswered(listener: UnansweredListener) -> None:
    """Call `listener(conversation=, text=, reason=)` whenever the assistant has no answer."""
    if listener not in _unanswered_listeners:
        _unanswered_listeners.append(listener)


def report_unanswered(*, conversation: Conversation, text: str, reason: str) -> None:
    """Tell the registered listeners, inside the turn's transaction, of a message left unanswered."""
    if text.strip():
        for listener in _unanswered_listeners:
            listener(conversation=conversation, text=text, reason=reason)
