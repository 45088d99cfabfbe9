"""Reads of the feedback pages: the review queue, the training examples reviewers gave, the
unanswered questions grouped by similarity, and how knowledge-base answers and reply templates do.

Customer texts are encrypted at rest, so every comparison of texts happens here in Python.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db.models import (
    Avg,
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
)
from django.utils import timezone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

from concilia.assistant.models import (
    Author,
    ChatMessage,
    Conversation,
    ConversationStatus,
    Handover,
    KnowledgeArticle,
)
from concilia.cases.models import ReplyTemplate
from concilia.feedback.models import (
    LabelledModel,
    QuestionStatus,
    ReviewItem,
    ReviewLabel,
    ReviewReason,
    TemplateUse,
    UnansweredQuestion,
)

LABELLED_MODELS = tuple(LabelledModel.values)
# A conversation with the assistant still, no case, nothing solved, and no word from the
# customer for this long was abandoned.
ABANDONED_AFTER = dt.timedelta(hours=1)
# Unanswered questions at least this similar (cosine of character n-grams) are one group.
GROUP_SIMILARITY = 0.5
QUEUE_LIMIT = 200


def normalise(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces: how questions are counted alike."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", plain).split())


# -- the review queue ---------------------------------------------------------------------------


def review_candidates(now: dt.datetime | None = None) -> QuerySet[Conversation]:
    """Conversations nobody has reviewed yet that got a thumbs-down, were abandoned, or went to
    a person; each annotated with `thumbs_down`, `handed_over` and `abandoned` (booleans)."""
    now = now or timezone.now()
    thumbs_down = ChatMessage.objects.filter(conversation=OuterRef("pk"), rating=-1)
    handed_over = Handover.objects.filter(conversation=OuterRef("pk"))
    reviewed = ReviewItem.objects.filter(conversation=OuterRef("pk"))
    abandoned = Q(
        status=ConversationStatus.ACTIVE,
        case__isnull=True,
        resolved_by_assistant=False,
        last_customer_at__lt=now - ABANDONED_AFTER,
    )
    return (
        Conversation.objects.annotate(
            thumbs_down=Exists(thumbs_down),
            handed_over=Exists(handed_over),
            abandoned=ExpressionWrapper(abandoned, output_field=BooleanField()),
        )
        .filter(Q(thumbs_down=True) | Q(handed_over=True) | abandoned)
        .exclude(Exists(reviewed))
        .order_by("-updated_at", "-pk")
    )


def reasons_of(conversation: Conversation) -> list[str]:
    """The ReviewReason values of an annotated review candidate."""
    pairs = (
        (ReviewReason.THUMBS_DOWN, getattr(conversation, "thumbs_down", False)),
        (ReviewReason.ABANDONED, getattr(conversation, "abandoned", False)),
        (ReviewReason.HANDOVER, getattr(conversation, "handed_over", False)),
    )
    return [str(reason) for reason, present in pairs if present]


def customer_messages(conversation: Conversation) -> list[ChatMessage]:
    return list(conversation.messages.filter(author=Author.CUSTOMER).order_by("seq"))


# -- training examples --------------------------------------------------------------------------


def review_examples(model: str) -> list[tuple[str, str]]:
    """The (text, label) pairs reviewers gave for an NLU model, excluded ones left out; when the
    same text (normalised) was labelled twice, the latest label stands."""
    latest: dict[str, tuple[str, str]] = {}
    labels = ReviewLabel.objects.filter(model=model, excluded=False).order_by("created_at", "pk")
    for label in labels.only("text", "label"):
        latest[normalise(label.text)] = (label.text.strip(), label.label)
    return list(latest.values())


def review_examples_for(model: str) -> Callable[[], list[tuple[str, str]]]:
    """The example source of one model, as the NLU's registry wants it (a function of nothing)."""
    return lambda: review_examples(model)


# -- unanswered questions -----------------------------------------------------------------------


@dataclass
class QuestionGroup:
    """Similar unanswered questions: the most asked one stands for them all."""

    questions: list[UnansweredQuestion] = field(default_factory=list)

    @property
    def lead(self) -> UnansweredQuestion:
        return self.questions[0]

    @property
    def count(self) -> int:
        return sum(q.ask_count for q in self.questions)

    @property
    def last_asked_at(self) -> dt.datetime:
        return max(q.last_asked_at for q in self.questions)

    @property
    def first_asked_at(self) -> dt.datetime:
        return min(q.first_asked_at for q in self.questions)


def unanswered(status: str = QuestionStatus.OPEN) -> QuerySet[UnansweredQuestion]:
    return (
        UnansweredQuestion.objects.filter(status=status)
        .annotate(ask_count=Count("asks"))
        .select_related("article")
    )


def grouped(questions: Iterable[UnansweredQuestion]) -> list[QuestionGroup]:
    """Questions grouped with those similar to them (single link over a cosine threshold), the
    groups most asked first, each led by its most asked question."""
    items = sorted(questions, key=lambda q: (-q.ask_count, -q.last_asked_at.timestamp()))
    if not items:
        return []
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    matrix = vectorizer.fit_transform([q.text for q in items])
    similarity = linear_kernel(matrix, matrix)
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if similarity[i, j] >= GROUP_SIMILARITY:
                parent[root(j)] = root(i)
    groups: dict[int, QuestionGroup] = {}
    for i, question in enumerate(items):
        groups.setdefault(root(i), QuestionGroup()).questions.append(question)
    return sorted(groups.values(), key=lambda g: (-g.count, -g.last_asked_at.timestamp()))


# -- knowledge-base answers and reply templates -------------------------------------------------


@dataclass(frozen=True)
class ArticleUse:
    article: KnowledgeArticle
    shown: int
    helpful: int
    unhelpful: int

    @property
    def rated(self) -> int:
        return self.helpful + self.unhelpful

    @property
    def helpful_rate(self) -> float | None:
        """Share of the answers rated that helped; None before anyone rated it."""
        return self.helpful / self.rated if self.rated else None


def article_uses() -> list[ArticleUse]:
    """Every article with the assistant's own counters (shown, thumbs and "did this solve it"),
    the most shown first."""
    return [
        ArticleUse(a, a.shown_count, a.helpful_count, a.unhelpful_count)
        for a in KnowledgeArticle.objects.order_by("-shown_count", "question_en")
    ]


@dataclass(frozen=True)
class TemplateStats:
    template: ReplyTemplate
    uses: int
    cases: int
    agents: int
    last_used_at: dt.datetime | None
    csat: float | None  # the mean satisfaction (1-5) of the cases it answered that were rated
    rated_cases: int


def case_satisfaction(case_ids: Iterable[int]) -> dict[int, float]:
    """Each rated case's satisfaction (1-5): the mean of its conversations' survey scores."""
    rows = (
        Conversation.objects.filter(case__in=list(case_ids), csat_score__isnull=False)
        .values("case")
        .annotate(score=Avg("csat_score"))
    )
    return {row["case"]: float(row["score"]) for row in rows}


def template_stats(
    since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[TemplateStats]:
    """How often each reply template was used (in the period), by how many agents on how many
    cases, and the satisfaction of those cases (each case counted once per template)."""
    uses = TemplateUse.objects.all()
    if since is not None:
        uses = uses.filter(used_at__gte=since)
    if until is not None:
        uses = uses.filter(used_at__lt=until)
    cases_of: dict[int, set[int]] = {}
    agents_of: dict[int, set[int]] = {}
    count_of: dict[int, int] = {}
    last_of: dict[int, dt.datetime] = {}
    for template_id, case_id, agent_id, used_at in uses.values_list(
        "template", "case", "agent", "used_at"
    ):
        cases_of.setdefault(template_id, set()).add(case_id)
        if agent_id is not None:
            agents_of.setdefault(template_id, set()).add(agent_id)
        count_of[template_id] = count_of.get(template_id, 0) + 1
        last_of[template_id] = max(used_at, last_of.get(template_id, used_at))
    satisfaction = case_satisfaction(set().union(*cases_of.values()) if cases_of else ())
    stats = []
    for template in ReplyTemplate.objects.all():
        cases = cases_of.get(template.pk, set())
        scores = [satisfaction[c] for c in cases if c in satisfaction]
        stats.append(
            TemplateStats(
                template=template,
                uses=count_of.get(template.pk, 0),
                cases=len(cases),
                agents=len(agents_of.get(template.pk, set())),
                last_used_at=last_of.get(template.pk),
                csat=sum(scores) / len(scores) if scores else None,
                rated_cases=len(scores),
            )
        )
    return sorted(stats, key=lambda s: (-s.uses, s.template.position, s.template.code))
