"""Supervisors' feedback pages: the conversations to review and label, the questions the
assistant could not answer, and how knowledge-base answers and reply templates do.

Supervisors and administrators only: a review shows the whole chat, whatever team's case it
became, and decides what the assistant learns.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from concilia.assistant.models import Author, Conversation
from concilia.core import audit
from concilia.feedback import actions, queries
from concilia.feedback.forms import MessageLabelFormSet
from concilia.feedback.models import (
    QuestionStatus,
    ReviewItem,
    ReviewLabel,
    UnansweredQuestion,
)
from concilia.resolution.views import supervisor_view

PAGE_SIZE = 50


@require_GET
@supervisor_view
def review_queue(request: HttpRequest) -> HttpResponse:
    page = Paginator(queries.review_candidates().select_related("case"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [{"conversation": c, "reasons": queries.reasons_of(c)} for c in page]
    audit.record(audit.LIST, target=Conversation, listed=[row["conversation"] for row in rows])
    return render(request, "feedback/queue.html", {"page": page, "rows": rows})


@require_GET
@supervisor_view
def reviewed_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(
        ReviewItem.objects.select_related("reviewer", "conversation").prefetch_related("labels"),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    return render(request, "feedback/reviewed.html", {"page": page})


def _initial(conversation: Conversation) -> list[dict[str, Any]]:
    return [{"message": m.pk, "text": m.body} for m in queries.customer_messages(conversation)]


def _labels(formset: Any, conversation: Conversation) -> list[actions.Label]:
    """The labels the reviewer gave (a category and a kind are two labels of one message)."""
    by_pk = {m.pk: m for m in queries.customer_messages(conversation)}
    labels = []
    for form in formset.forms:
        data = form.cleaned_data
        message = by_pk.get(data.get("message"))
        for model, value in (("categories", data.get("category")), ("kinds", data.get("kind"))):
            if value:
                labels.append(
                    actions.Label(
                        message=message,
                        text=data["text"],
                        model=model,
                        label=value,
                        slots=data.get("slots", ""),
                        excluded=data.get("excluded", False),
                    )
                )
    return labels


@require_http_methods(["GET", "POST"])
@supervisor_view
def review_page(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    conversation = get_object_or_404(Conversation, public_id=public_id)
    review = ReviewItem.objects.filter(conversation=conversation).first()
    formset = MessageLabelFormSet(request.POST or None, initial=_initial(conversation))
    if request.method == "POST" and review is None and formset.is_valid():
        labels = _labels(formset, conversation) if "save" in request.POST else []
        try:
            actions.review_conversation(
                conversation=conversation, reviewer=request.user, labels=labels
            )
        except actions.AlreadyReviewed:
            messages.error(request, _("Someone reviewed this conversation first."))
        except actions.NotForReview:
            messages.error(request, _("This conversation is not waiting for a review."))
        else:
            messages.success(
                request,
                _("Review saved with %(count)d labels.") % {"count": len(labels)}
                if labels
                else _("Review closed: nothing to learn."),
            )
            return redirect("feedback:queue")
    elif request.method == "GET":
        audit.record(audit.VIEW, target=conversation, customer=conversation.customer)
    thread = list(conversation.messages.order_by("seq"))
    forms_by_message = {form.initial.get("message"): form for form in formset.forms}
    rows = [
        {"message": m, "form": forms_by_message.get(m.pk) if m.author == Author.CUSTOMER else None}
        for m in thread
    ]
    return render(
        request,
        "feedback/review.html",
        {
            "conversation": conversation,
            "review": review,
            "labels": review.labels.all() if review else [],
            "formset": formset,
            "rows": rows,
        },
        status=400 if request.method == "POST" and not formset.is_valid() else 200,
    )


@require_POST
@supervisor_view
def exclude_label(request: HttpRequest, pk: int) -> HttpResponse:
    label = get_object_or_404(ReviewLabel.objects.select_related("review__conversation"), pk=pk)
    excluded = request.POST.get("excluded") == "1"
    actions.exclude_label(label=label, excluded=excluded, by=request.user)
    messages.success(
        request,
        _("The label is kept out of training.") if excluded else _("The label trains again."),
    )
    return redirect("feedback:review", label.review.conversation.public_id)


def _new_article_url(question: UnansweredQuestion, phrasings: list[str]) -> str:
    """The admin's form for a new knowledge-base answer, filled with the customers' words."""
    field = "question_es" if question.language == "es" else "question_en"
    query = {field: question.text[:200], "phrasings": "\n".join(phrasings)}
    return reverse("admin:assistant_knowledgearticle_add") + "?" + urlencode(query)


@require_GET
@supervisor_view
def unanswered_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", QuestionStatus.OPEN)
    if status not in QuestionStatus.values:
        status = QuestionStatus.OPEN
    # An article written since is found now: its questions leave the open list.
    actions.settle_answered_questions()
    groups = queries.grouped(queries.unanswered(status))
    rows = [
        {
            "group": group,
            "create_url": _new_article_url(group.lead, [q.text for q in group.questions[1:]]),
        }
        for group in groups
    ]
    return render(
        request,
        "feedback/unanswered.html",
        {"rows": rows, "status": status, "statuses": QuestionStatus.choices},
    )


@require_POST
@supervisor_view
def dismiss_question(request: HttpRequest, pk: int) -> HttpResponse:
    question = get_object_or_404(UnansweredQuestion, pk=pk)
    actions.dismiss_question(question=question, by=request.user)
    messages.success(request, _("The question was dismissed."))
    return redirect("feedback:unanswered")


@require_GET
@supervisor_view
def knowledge_report(request: HttpRequest) -> HttpResponse:
    return render(request, "feedback/knowledge.html", {"uses": queries.article_uses()})


@require_GET
@supervisor_view
def template_report(request: HttpRequest) -> HttpResponse:
    return render(request, "feedback/templates.html", {"stats": queries.template_stats()})
