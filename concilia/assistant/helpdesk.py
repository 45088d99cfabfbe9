"""The agents' live chats: the conversations handed to a person, and the page to answer them.

The case page links here by URL only (`cases` never imports `assistant`); who may see and change a
chat is who may see and change its case (`concilia.cases.access`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from concilia.assistant import actions, flows
from concilia.assistant.models import (
    Author,
    ChatMessage,
    Conversation,
    ConversationStatus,
    Handover,
    HandoverReason,
)
from concilia.cases.access import may_change, may_see, visible_cases
from concilia.cases.models import Kind
from concilia.cases.queries import active_categories
from concilia.cases.views import helpdesk_view
from concilia.core import audit

# A live chat's page polls for new messages this often (livechat.js reads it from the page).
POLL_MILLISECONDS = 1500
LIST_LIMIT = 200
# A chat nobody has taken this long after a person was expected is shown in red.
LATE_AFTER = dt.timedelta(minutes=5)
# What the audit log says a chat page shows: the messages, and the customer the case names.
TRANSCRIPT = ["transcript", "customer.name", "customer.email"]


class LiveReplyForm(forms.Form):
    body = forms.CharField(
        label=gettext_lazy("Your answer"),
        max_length=4000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
    )


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _latest_handovers() -> Prefetch:
    return Prefetch(
        "handovers",
        queryset=Handover.objects.select_related("taken_by").order_by("-created_at", "-pk"),
        to_attr="handover_list",
    )


def live_conversations(user: Any) -> QuerySet[Conversation]:
    """Conversations with a person whose case `user` sees: those nobody has taken yet first, then
    those being answered, each the one handed over longest ago first."""
    latest = Handover.objects.filter(conversation=OuterRef("pk")).order_by("-created_at", "-pk")
    return (
        Conversation.objects.filter(
            status=ConversationStatus.HANDED_OVER, case__in=visible_cases(user)
        )
        .select_related("case__customer", "case__assignee", "case__team")
        .annotate(
            handed_over_at=Subquery(latest.values("created_at")[:1]),
            taken=Subquery(latest.values("taken_at")[:1]),
        )
        .prefetch_related(_latest_handovers())
        .order_by(F("taken").asc(nulls_first=True), "handed_over_at", "pk")
    )


def _conversation(request: HttpRequest, public_id: uuid.UUID) -> Conversation:
    """The conversation, if its case is one the agent may see; 404 otherwise (ids not probed)."""
    conversation = (
        Conversation.objects.select_related(
            "case__customer", "case__assignee", "case__team", "case__category"
        )
        .prefetch_related(_latest_handovers())
        .filter(public_id=public_id, case__isnull=False)
        .first()
    )
    if conversation is None or not may_see(request.user, conversation.case):
        raise Http404
    return conversation


def _changeable(request: HttpRequest, public_id: uuid.UUID) -> Conversation:
    conversation = _conversation(request, public_id)
    if not may_change(request.user, conversation.case):
        raise PermissionDenied
    return conversation


def _handover(conversation: Conversation) -> Handover | None:
    handovers = getattr(conversation, "handover_list", None)
    if handovers is None:
        handovers = list(conversation.handovers.select_related("taken_by"))
    return handovers[0] if handovers else None


def _author_label(message: ChatMessage) -> str:
    if message.author == Author.AGENT and message.author_user is not None:
        return message.author_user.get_full_name() or message.author_user.get_username()
    return str(Author(message.author).label)


def _message_json(message: ChatMessage) -> dict[str, Any]:
    local = timezone.localtime(message.created_at)
    return {
        "seq": message.seq,
        "author": message.author,
        "author_label": _author_label(message),
        "body": message.body,
        "file": message.upload.original_name if message.upload_id else "",
        "created_at": message.created_at.isoformat(),
        "time": formats.time_format(local, "TIME_FORMAT"),
    }


def snapshot_lines(handover: Handover) -> list[tuple[str, str]]:
    """What the assistant knew when it handed over, as (label, value) lines an agent reads."""
    snapshot = handover.snapshot or {}
    lines: list[tuple[str, str]] = [(_("Reason"), str(HandoverReason(handover.reason).label))]
    if handover.detail:
        lines.append((_("Detail"), handover.detail))
    category = active_categories().get(snapshot.get("category") or "")
    if category is not None:
        confidence = snapshot.get("category_confidence")
        value = category.name
        if confidence is not None:
            value += " " + _("(confidence %(confidence)s)") % {"confidence": confidence}
        lines.append((_("Category"), value))
    if snapshot.get("kind") in Kind.values:
        lines.append((_("Kind"), str(Kind(snapshot["kind"]).label)))
    understanding = snapshot.get("understanding") or {}
    if "frustration" in understanding:
        lines.append((_("Frustration (0 calm, 1 furious)"), str(understanding["frustration"])))
    if snapshot.get("frustration_hits"):
        lines.append((_("Frustrated messages"), str(snapshot["frustration_hits"])))
    flow = flows.flow_for(category) if category is not None else None
    for name, value in (snapshot.get("fields") or {}).items():
        slot = flow.slot(name) if flow is not None else None
        label = str(slot.label) if slot is not None and slot.label else name
        if isinstance(value, list):
            shown = _("%(count)s file(s)") % {"count": len(value)}
        elif slot is not None and slot.choices:
            shown = flows.choice_label(slot.choices, str(value))
        else:
            shown = str(value)
        lines.append((label, shown))
    order = snapshot.get("order")
    if isinstance(order, dict) and order.get("number"):
        lines.append(
            (
                _("Order found"),
                _("%(number)s of %(date)s: %(items)s, %(total)s %(currency)s")
                % {
                    "number": order["number"],
                    "date": order.get("placed_on", ""),
                    "items": ", ".join(order.get("items", [])),
                    "total": order.get("total", ""),
                    "currency": order.get("currency", ""),
                },
            )
        )
    return lines


@require_GET
@helpdesk_view
def chat_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    chats = []
    for conversation in live_conversations(request.user)[:LIST_LIMIT]:
        handover = _handover(conversation)
        waiting = handover is not None and handover.taken_by_id is None
        chats.append(
            {
                "conversation": conversation,
                "case": conversation.case,
                "handover": handover,
                "waiting": waiting,
                # Outside opening hours a person is only expected from the next opening.
                "expected_later": waiting
                and handover.expected_at is not None
                and handover.expected_at > now,
                "late": waiting
                and handover.expected_at is not None
                and now - handover.expected_at > LATE_AFTER,
            }
        )
    audit.record(audit.LIST, target=Conversation, listed=[chat["conversation"] for chat in chats])
    return render(request, "assistant/helpdesk/list.html", {"chats": chats})


@require_GET
@helpdesk_view
def case_chat(request: HttpRequest, reference: str) -> HttpResponse:
    """From a case to its live chat: the one with a person if any, else the latest."""
    case = visible_cases(request.user).filter(reference=reference.strip().upper()).first()
    if case is None:
        raise Http404
    conversations = Conversation.objects.filter(case=case).order_by("-created_at", "-pk")
    chosen = (
        conversations.filter(status=ConversationStatus.HANDED_OVER).first() or conversations.first()
    )
    if chosen is None:
        raise Http404
    return redirect("livechat:chat", public_id=chosen.public_id)


@require_GET
@helpdesk_view
def chat_page(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    conversation = _conversation(request, public_id)
    audit.record(audit.VIEW, target=conversation, case=conversation.case, fields=TRANSCRIPT)
    return _chat_page(request, conversation)


def _chat_page(
    request: HttpRequest,
    conversation: Conversation,
    form: LiveReplyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    handover = _handover(conversation)
    transcript = list(conversation.messages.select_related("author_user", "upload"))
    live = conversation.status == ConversationStatus.HANDED_OVER
    changeable = may_change(request.user, conversation.case)
    return render(
        request,
        "assistant/helpdesk/chat.html",
        {
            "conversation": conversation,
            "case": conversation.case,
            "handover": handover,
            "summary": snapshot_lines(handover) if handover else [],
            "transcript": [
                {"message": m, "author_label": _author_label(m), "css": _css(m)} for m in transcript
            ],
            "last_seq": transcript[-1].seq if transcript else 0,
            "live": live,
            "may_change": changeable,
            "may_take": changeable
            and live
            and (handover is None or handover.taken_by_id != request.user.pk),
            "form": form or LiveReplyForm(),
            "poll_url": reverse("livechat:messages", args=[conversation.public_id]),
            "poll_ms": POLL_MILLISECONDS,
        },
        status=status,
    )


def _css(message: ChatMessage) -> str:
    return {Author.CUSTOMER: "customer", Author.AGENT: "staff"}.get(message.author, "event")


@require_GET
@helpdesk_view
def chat_messages(request: HttpRequest, public_id: uuid.UUID) -> JsonResponse:
    """What is new in the chat after message `after` (livechat.js polls it)."""
    conversation = _conversation(request, public_id)
    after = _seq(request.GET.get("after"))
    new = list(conversation.messages.filter(seq__gt=after).select_related("author_user", "upload"))
    if new:  # a poll that brings nothing shows nothing: no entry
        audit.record(
            audit.VIEW,
            target=conversation,
            case=conversation.case,
            fields=TRANSCRIPT,
            detail={"after": after, "messages": len(new)},
        )
    return JsonResponse(
        {
            **_chat_state(request, conversation),
            "last_seq": conversation.last_seq,
            "messages": [_message_json(m) for m in new],
        }
    )


def _chat_state(request: HttpRequest, conversation: Conversation) -> dict[str, Any]:
    """The chat's status and who took it, for the page to keep its side panel current."""
    handover = _handover(conversation)
    taken_by = handover.taken_by if handover is not None else None
    return {
        "status": conversation.status,
        "status_label": conversation.get_status_display(),
        "taken_by": str(taken_by) if taken_by is not None else "",
        "taken_by_me": taken_by is not None and taken_by.pk == request.user.pk,
    }


def _seq(value: str | None) -> int:
    try:
        return max(0, min(int(value or 0), 2**31 - 1))
    except ValueError:
        return 0


def _not_live(request: HttpRequest, conversation: Conversation) -> HttpResponse:
    if conversation.status == ConversationStatus.CLOSED:
        text = _("This chat has ended, so nothing was sent. You can still answer from the case.")
    else:
        text = _(
            "The assistant still has this chat (it was not handed to a person), so nothing was "
            "sent. You can answer from the case."
        )
    if _wants_json(request):
        return JsonResponse({"error": text, **_chat_state(request, conversation)}, status=409)
    messages.error(request, text)
    return redirect("livechat:chat", public_id=conversation.public_id)


@require_POST
@helpdesk_view
def take_chat(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    conversation = _changeable(request, public_id)
    if conversation.status != ConversationStatus.HANDED_OVER:
        return _not_live(request, conversation)
    actions.take_conversation(conversation=conversation, agent=request.user)
    messages.success(request, _("You have taken this chat; the customer sees that you joined."))
    return redirect("livechat:chat", public_id=conversation.public_id)


@require_POST
@helpdesk_view
def reply_chat(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The agent's answer in the chat (also the case's reply, not emailed). The first answer to
    a chat nobody has taken yet takes it, so the customer sees who joined."""
    conversation = _changeable(request, public_id)
    form = LiveReplyForm(request.POST)
    if not form.is_valid():
        if _wants_json(request):
            errors = [str(e) for e in form.errors.get("body", [])]
            return JsonResponse({"error": " ".join(errors)}, status=400)
        return _chat_page(request, conversation, form=form, status=400)
    if conversation.status != ConversationStatus.HANDED_OVER:
        return _not_live(request, conversation)
    handover = _handover(conversation)
    try:
        if handover is not None and handover.taken_by_id is None:
            actions.take_conversation(conversation=conversation, agent=request.user)
        actions.agent_reply(
            conversation=conversation, agent=request.user, body=form.cleaned_data["body"]
        )
    except actions.ConversationEnded:  # ended between the check and the write
        conversation.refresh_from_db(fields=["status"])
        return _not_live(request, conversation)
    if _wants_json(request):
        added = conversation.messages.filter(seq__gt=_seq(request.POST.get("after")))
        fresh = _conversation(request, public_id)
        return JsonResponse(
            {
                **_chat_state(request, fresh),
                "messages": [
                    _message_json(m) for m in added.select_related("author_user", "upload")
                ],
            },
            status=201,
        )
    return redirect(reverse("livechat:chat", args=[conversation.public_id]) + "#reply")


@require_POST
@helpdesk_view
def end_chat(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    conversation = _changeable(request, public_id)
    try:
        actions.end_live_chat(conversation=conversation, agent=request.user)
    except actions.ConversationEnded:
        return _not_live(request, conversation)
    messages.success(
        request, _("The chat has ended; the customer was asked for the satisfaction survey.")
    )
    return redirect("livechat:chat", public_id=conversation.public_id)
