"""How reply templates and knowledge-base answers do, against a hand-made fixture."""

from __future__ import annotations

import re
import uuid

import pytest

from concilia.assistant.models import Conversation, KnowledgeArticle
from concilia.cases import actions
from concilia.cases.models import ReplyTemplate
from concilia.feedback.models import TemplateUse
from concilia.feedback.queries import template_stats

pytestmark = pytest.mark.django_db


def rated(case, score: int | None) -> None:
    Conversation.objects.create(
        token_digest=uuid.uuid4().hex, language="en", case=case, csat_score=score
    )


def test_template_uses_and_the_satisfaction_of_their_cases(supervisor_client, sara, ana, open_case):
    for code in ("apology", "refund-sent", "unused"):
        ReplyTemplate.objects.create(
            code=code, name_es=code, name_en=code, body_es="x", body_en="x"
        )
    a, b, c, d = (open_case() for _ in range(4))
    rated(a, 5)
    rated(b, 2)
    rated(b, 4)  # case b: 3 on average
    rated(c, None)  # a survey left unanswered rates nothing
    # Ana replies from the helpdesk with the apology on case a.
    supervisor_client.force_login(ana)
    response = supervisor_client.post(
        f"/helpdesk/cases/{a.reference}/reply",
        {"version": a.version, "template": "apology", "body": "Sorry!", "then": "pending_customer"},
    )
    assert response.status_code == 302, response.content.decode()[:500]
    for case, template, author in (
        (a, "apology", ana),
        (b, "apology", sara),
        (c, "refund-sent", sara),
        (d, "apology", ana),
    ):
        case.refresh_from_db()
        actions.reply_to_customer(case=case, body="…", author=author, template_code=template)
    actions.reply_to_customer(case=d, body="no template", author=ana)

    stats = {s.template.code: s for s in template_stats()}

    assert TemplateUse.objects.count() == 5
    assert (stats["apology"].uses, stats["apology"].cases, stats["apology"].agents) == (4, 3, 2)
    assert (stats["apology"].csat, stats["apology"].rated_cases) == (4.0, 2)  # (5 + 3) / 2
    assert (stats["refund-sent"].uses, stats["refund-sent"].csat) == (1, None)
    assert (stats["unused"].uses, stats["unused"].cases) == (0, 0)
    supervisor_client.force_login(sara)
    page = supervisor_client.get("/helpdesk/feedback/templates/").content.decode()
    assert re.search(
        r'data-template="apology">.*?data-count="uses">4<.*?data-csat="4.00"', page, re.S
    )
    assert 'data-template="unused"' in page


def test_knowledge_answers_show_how_often_they_helped(supervisor_client):
    KnowledgeArticle.objects.create(
        question_es="¿Horario?",
        question_en="Opening hours?",
        answer_es="9-18",
        answer_en="9-18",
        shown_count=10,
        helpful_count=3,
        unhelpful_count=1,
    )
    page = supervisor_client.get("/helpdesk/feedback/knowledge/").content.decode()
    assert re.search(
        r'data-count="shown">10<.*data-count="helpful">3<.*data-count="unhelpful">1<.*data-rate="helpful">75 %<',
        page,
        re.S,
    )
