"""Every write to conversations: starting one, a customer's turn, a file, the case it opens, the
hand-over to a person, an agent's live answers, ratings and the satisfaction survey."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import formats, timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from concilia.accounts.models import User
from concilia.assistant import flows, knowledge, visits
from concilia.assistant.dialogue import (
    HUMAN,
    SKIP,
    Dialogue,
    Reply,
    open_case_references,
    understanding_record,
)
from concilia.assistant.models import (
    Author,
    ChatMessage,
    ChatUpload,
    Conversation,
    ConversationStatus,
    Handover,
    HandoverReason,
    TechnicianVisit,
    TroubleshootingGuide,
)
from concilia.cases import actions as case_actions
from concilia.cases import sla
from concilia.cases.attachments import CheckedFile, stored_files
from concilia.cases.models import ActorKind, Case, Channel, Kind, Priority
from concilia.cases.queries import active_categories
from concilia.core import audit
from concilia.core.ports import TriageDecision, triage
from concilia.core.tasks import enqueue_with_change
from concilia.customers.actions import identify_customer, record_consent
from concilia.customers.models import Customer
from concilia.customers.queries import notice_by_version
from concilia.nlu import Understanding, understand

logger = logging.getLogger(__name__)


class ConversationEnded(Exception):
    """The conversation is closed to this kind of message (e.g. rating a message of nobody)."""


@dataclass(frozen=True)
class Started:
    conversation: Conversation
    token: str


def _append(
    conversation: Conversation,
    author: str,
    body: str,
    *,
    choices: list[dict[str, str]] | None = None,
    expects: str = "",
    understanding: dict[str, Any] | None = None,
    upload: ChatUpload | None = None,
    author_user: User | None = None,
) -> ChatMessage:
    conversation.last_seq += 1
    return ChatMessage.objects.create(
        conversation=conversation,
        seq=conversation.last_seq,
        author=author,
        author_user=author_user,
        body=body,
        choices=choices or [],
        expects=expects,
        understanding=understanding or {},
        upload=upload,
    )


def _say_all(conversation: Conversation, replies: Sequence[Reply]) -> list[ChatMessage]:
    """The assistant's replies, written in one statement; their buttons are remembered so that
    a pressed one is written in the transcript with its words."""
    from concilia.nlu.llm import word_reply

    messages = []
    for reply in replies:
        body = reply.body
        if reply.expects not in ("choice",) and not reply.choices:
            body = word_reply(body, language=conversation.language)
        conversation.last_seq += 1
        messages.append(
            ChatMessage(
                conversation=conversation,
                seq=conversation.last_seq,
                author=Author.ASSISTANT,
                body=body,
                choices=reply.choices,
                expects=reply.expects,
            )
        )
    if messages:
        conversation.state["offered"] = {c["value"]: c["label"] for c in messages[-1].choices}
    return ChatMessage.objects.bulk_create(messages)


# Channels that push every new message to the customer (a messaging app) instead of being polled
# as the widget is: the job (a dotted path: the channel lives in another package) that sends
# what a write added, queued with every write to one of their conversations.
PUSH_JOBS = {"telegram": "concilia.integrations.telegram.tasks.push_messages"}


def _save(conversation: Conversation) -> None:
    conversation.save(
        update_fields=[
            "state",
            "language",
            "status",
            "customer",
            "verified",
            "consent",
            "consent_declined_at",
            "case",
            "category_code",
            "resolved_by_assistant",
            "csat_score",
            "csat_comment",
            "csat_at",
            "last_seq",
            "last_customer_at",
            "ended_at",
            "updated_at",
        ]
    )
    push = PUSH_JOBS.get(conversation.channel)
    if push:
        enqueue_with_change(import_string(push), conversation_id=conversation.pk)


@transaction.atomic
def start_conversation(*, language: str, channel: str, customer: Customer | None = None) -> Started:
    """A new conversation with its greeting and the privacy notice.

    `customer` is a customer who proved who they are (signed in to follow their cases): the
    assistant greets them by name and knows their open cases.
    """
    token, digest = Conversation.new_token()
    conversation = Conversation(language=language, channel=channel, token_digest=digest)
    if customer is not None:
        conversation.customer = customer
        conversation.verified = True
    conversation.save()
    dialogue = Dialogue(conversation)
    with translation.override(language):
        dialogue.open(
            customer_name=customer.name if customer else "",
            open_cases=open_case_references(customer) if customer else (),
        )
    _say_all(conversation, dialogue.replies)
    _save(conversation)
    return Started(conversation=conversation, token=token)


def _lock(pk: int) -> QuerySet[Conversation]:
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("customer", "case")
        .filter(pk=pk)
    )


def _locked(conversation: Conversation) -> Conversation:
    return _lock(conversation.pk).get()


def post_customer_message(
    *,
    conversation: Conversation,
    text: str = "",
    choice: str = "",
    upload: ChatUpload | None = None,
) -> list[ChatMessage]:
    """One customer turn (text, a button or a file); returns the messages it added, in order."""
    # Read the message before taking any lock: the models need no database, and on SQLite the
    # write lock is the whole site's, so nothing slow should run while it is held.
    hint = conversation.language
    reading = (
        understand(text, language=hint)
        if text and conversation.status != ConversationStatus.HANDED_OVER
        else None
    )
    return _post_customer_message(
        conversation=conversation, text=text, choice=choice, upload=upload, reading=(hint, reading)
    )


@transaction.atomic
def _post_customer_message(
    *,
    conversation: Conversation,
    text: str,
    choice: str,
    upload: ChatUpload | None,
    reading: tuple[str, Understanding | None],
) -> list[ChatMessage]:
    conversation = _locked(conversation)
    hint, early = reading
    label = _choice_label(conversation, choice) if choice else ""
    body = text or label or (upload.original_name if upload else "")
    if conversation.status == ConversationStatus.HANDED_OVER:
        message = _append(conversation, Author.CUSTOMER, body, upload=upload)
        conversation.last_customer_at = message.created_at
        _to_case_thread(conversation, body, upload)
        _save(conversation)
        return [message]
    dialogue = Dialogue(conversation)
    # Read again in the rare case another turn changed the conversation's language meanwhile.
    early = early if hint == conversation.language else None
    found = dialogue.turn(text=text, choice=choice, upload=upload, reading=early)
    message = _append(
        conversation,
        Author.CUSTOMER,
        body,
        upload=upload,
        understanding=understanding_record(found) if found is not None else None,
    )
    conversation.last_customer_at = message.created_at
    with translation.override(conversation.language):
        _finish_turn(conversation, dialogue)
    replies = _say_all(conversation, dialogue.replies)
    if dialogue.send_code:
        from concilia.assistant.tasks import send_chat_code

        enqueue_with_change(
            send_chat_code, conversation_id=conversation.pk, nonce=dialogue.send_code
        )
    if dialogue.decide_case is not None:
        from concilia.assistant.tasks import decide_case as decide_case_job

        enqueue_with_change(
            decide_case_job, conversation_id=conversation.pk, case_id=dialogue.decide_case
        )
    if conversation.status == ConversationStatus.CLOSED and conversation.ended_at is None:
        conversation.ended_at = timezone.now()
    if conversation.case_id is not None:
        _copy_transcript(conversation)
    _save(conversation)
    return [message, *replies]


def _choice_label(conversation: Conversation, choice: str) -> str:
    """What the button the customer pressed said (the transcript shows words, not values)."""
    with translation.override(conversation.language):
        if choice == HUMAN:
            return _("Talk to a person")
        if choice == SKIP:
            return _("Skip")
    return str((conversation.state.get("offered") or {}).get(choice, choice))


def _to_case_thread(conversation: Conversation, body: str, upload: ChatUpload | None) -> None:
    case = conversation.case
    if case is None:
        return
    files = _checked_files([upload]) if upload else []
    case_actions.add_customer_message(case=case, body=body, files=files)
    if upload is not None:
        ChatUpload.objects.filter(pk=upload.pk).update(attached_at=timezone.now())
    conversation.state["copied_seq"] = conversation.last_seq


def _finish_turn(conversation: Conversation, dialogue: Dialogue) -> None:
    """What the dialogue decided needs writes elsewhere: a case, a hand-over."""
    state = conversation.state
    if dialogue.create_case:
        existing = state.pop("existing_case", None)
        if existing:
            _join_existing_case(conversation, dialogue, existing)
        else:
            _open_case(conversation, dialogue)
    if dialogue.handover is not None:
        reason, detail = dialogue.handover
        _hand_over(conversation, dialogue, reason, detail)


def _ensure_customer(conversation: Conversation) -> Customer:
    state = conversation.state
    if conversation.customer is None:
        conversation.customer = identify_customer(
            email=state["email"],
            name=state.get("name", ""),
            language=conversation.language,
            verified=False,
        )
    if conversation.consent_id is None and state.get("consent"):
        notice = notice_by_version(state["consent"]["notice"])
        if notice is not None:
            conversation.consent = record_consent(
                customer=conversation.customer,
                notice=notice,
                channel=Channel.CHAT,
                accepted_at=dt.datetime.fromisoformat(state["consent"]["at"]),
            )
    return conversation.customer


def _checked_files(uploads: Sequence[ChatUpload | None]) -> list[CheckedFile]:
    return stored_files(upload for upload in uploads if upload is not None)


def _description(conversation: Conversation, dialogue: Dialogue) -> str:
    state = conversation.state
    text = state.get("description", "").strip() or _("(The customer asked for a person.)")
    category = dialogue.category()
    extra: list[str] = []
    if category is not None:
        for slot in flows.flow_for(category).slots:
            if slot.case_field or slot.name not in dialogue.fields or slot.expects == "file":
                continue
            if slot.name == "desired":
                continue
            extra.append(f"{slot.label}: {dialogue._display(slot.name)}")
    if extra:
        text += "\n\n" + "\n".join(extra)
    return text


def _open_case(conversation: Conversation, dialogue: Dialogue) -> Case:
    state = conversation.state
    customer = _ensure_customer(conversation)
    categories = active_categories()
    category = categories.get(state.get("category", "")) or categories.get("other")
    if category is None:
        category = next(iter(categories.values()))
    fields = dialogue.fields
    # Every file of the conversation goes with the case, asked for or not.
    uploads = list(ChatUpload.objects.filter(conversation=conversation, attached_at__isnull=True))
    desired = fields.get("desired", "")
    case = case_actions.open_case(
        customer=customer,
        category=category,
        channel=Channel.CHAT,
        language=conversation.language,
        kind=state.get("kind") if state.get("kind") in Kind.values else Kind.COMPLAINT,
        description=_description(conversation, dialogue),
        desired_resolution=flows.choice_label(flows.DESIRED, desired) if desired else "",
        order_number=fields.get("order_number", "")[:60],
        purchase_date=dt.date.fromisoformat(fields["purchase_date"])
        if fields.get("purchase_date")
        else None,
        amount=Decimal(fields["amount"]) if fields.get("amount") else None,
        currency=state.get("currency", "EUR"),
        consent=conversation.consent,
        files=_checked_files(uploads),
    )
    ChatUpload.objects.filter(pk__in=[u.pk for u in uploads]).update(attached_at=timezone.now())
    conversation.case = case
    _copy_transcript(conversation, case=case)
    if state.get("category") == "technical_problem":
        _book_visit(conversation, dialogue, case)
    dialogue.say(
        _(
            "Your case is registered with reference %(reference)s. You will receive a "
            "confirmation by email, and you can follow it on our tracking page with that "
            "reference and your email."
        )
        % {"reference": case.reference}
    )
    _after_case(conversation, dialogue, case)
    return case


def _book_visit(conversation: Conversation, dialogue: Dialogue, case: Case) -> None:
    state = conversation.state
    guide = TroubleshootingGuide.objects.filter(code=dialogue.fields.get("product")).first()
    language = conversation.language
    report = [
        _("Report for the technician"),
        _("Case: %(reference)s") % {"reference": case.reference},
        _("Product: %(product)s")
        % {"product": guide.product_in(language) if guide else _("Another product")},
        _("Problem described by the customer: %(text)s") % {"text": state.get("description", "")},
    ]
    tried = [step for step in state.get("tried", []) if step]
    if tried:
        report.append(_("Checks already done with the customer, without success:"))
        report += [f"  {n}. {step}" for n, step in enumerate(tried, 1)]
    visit = state.get("visit")
    if visit:
        report.append(_("Visit booked: %(when)s") % {"when": visits.describe(visit)})
        TechnicianVisit.objects.create(
            case=case,
            guide=guide,
            starts_at=dt.datetime.fromisoformat(visit["starts"]),
            ends_at=dt.datetime.fromisoformat(visit["ends"]),
            report="\n".join(str(line) for line in report),
        )
    else:
        report.append(_("No time suited the customer: call them to arrange the visit."))
    case_actions.add_system_note(case=case, body="\n".join(str(line) for line in report))


def _after_case(conversation: Conversation, dialogue: Dialogue, case: Case) -> None:
    """Categories that always need a person first (no automated outcome for them); any other
    case is decided by the policies after this turn's reply (`decide_case`, a job)."""
    if case.category_id in dialogue.rules.person_categories:
        dialogue.handover = (HandoverReason.CATEGORY, case.category.code)
        return
    dialogue.await_decision(case.pk)


def decide_case(*, conversation_id: int, case_id: int) -> list[ChatMessage]:
    """The policies decide a case the chat opened, then the assistant says what follows in the
    conversation (an offer with its buttons, a settlement, a hand-over, the wait for a person)
    and returns those messages. Run by the `decide_case` job once the customer has the turn's
    reply; it says nothing when the conversation has moved on meanwhile (the customer asked for
    a person, cancelled), and nothing twice. These messages come after `post_customer_message`
    returned: the widget polls for them, and a pushing channel (`PUSH_JOBS`) gets them queued
    when the conversation is saved, as for any write."""
    case = Case.objects.select_related("customer", "category").filter(pk=case_id).first()
    if case is None:
        return []
    try:
        # Its own transaction, outside the conversation's lock; a failing policy or shop never
        # loses the case (it waits for a person) nor leaves the customer waiting.
        decision = triage()(case, hand_over=False)
    except Exception:
        logger.exception("Triage failed for %s; the case waits for a person", case.reference)
        decision = TriageDecision(action="none")
    return _tell_decision(conversation_id=conversation_id, case=case, decision=decision)


@transaction.atomic
def _tell_decision(
    *, conversation_id: int, case: Case, decision: TriageDecision
) -> list[ChatMessage]:
    conversation = _lock(conversation_id).first()
    if (
        conversation is None
        or conversation.case_id != case.pk
        or conversation.state.get("step") != "deciding"
    ):
        return []
    dialogue = Dialogue(conversation)
    with translation.override(conversation.language):
        _follow_decision(conversation, dialogue, case, decision)
        if dialogue.handover is not None:
            reason, detail = dialogue.handover
            _hand_over(conversation, dialogue, reason, detail)
    replies = _say_all(conversation, dialogue.replies)
    _copy_transcript(conversation)
    _save(conversation)
    return replies


def _follow_decision(
    conversation: Conversation, dialogue: Dialogue, case: Case, decision: TriageDecision
) -> None:
    """What the policies' decision means in the chat; then the other hand-over rules, or the
    wait for an agent."""
    rules = dialogue.rules
    message = decision.message.get(conversation.language) or next(
        iter(decision.message.values()), ""
    )
    if decision.action == "offer" and decision.offer:
        dialogue.present_offer(decision.offer, message)
        return
    if message:
        dialogue.say(message)
    if decision.action in ("escalate", "wait"):
        dialogue.handover = (HandoverReason.POLICY, decision.reason[:300])
        return
    if decision.action == "resolved":
        conversation.resolved_by_assistant = True
        dialogue._ask_survey()
        return
    if decision.action == "evidence":
        dialogue._ask_survey()
        return
    if (
        case.amount is not None
        and rules.amount_limit is not None
        and case.amount > rules.amount_limit
    ):
        dialogue.handover = (HandoverReason.AMOUNT, f"{case.amount} > {rules.amount_limit}")
        return
    dialogue._ask_survey(
        _("A person from our team will answer by %(deadline)s at the latest.")
        % {"deadline": formats.date_format(timezone.localtime(case.deadline), "DATETIME_FORMAT")}
    )


def _join_existing_case(conversation: Conversation, dialogue: Dialogue, reference: str) -> None:
    customer = conversation.customer
    case = Case.objects.filter(reference=reference, customer=customer).first()
    if case is None:
        _open_case(conversation, dialogue)
        return
    body = conversation.state.get("description", "").strip()
    case_actions.add_customer_message(case=case, body=body or _("(From the chat.)"))
    conversation.case = case
    conversation.state["copied_seq"] = conversation.last_seq
    dialogue.say(
        _("I have added what you told me to %(reference)s; the person handling it will see it.")
        % {"reference": reference}
    )
    dialogue._ask_survey()


def _copy_transcript(conversation: Conversation, *, case: Case | None = None) -> None:
    """The conversation's lines not yet in the case's thread go there."""
    case = case or conversation.case
    if case is None:
        return
    copied = conversation.state.get("copied_seq", 0)
    lines = [
        case_actions.TranscriptLine(
            author_kind=ActorKind.CUSTOMER if m.author == Author.CUSTOMER else ActorKind.SYSTEM,
            body=m.body,
            created_at=m.created_at,
        )
        for m in conversation.messages.filter(seq__gt=copied).exclude(author=Author.AGENT)
    ]
    if lines:
        case_actions.add_transcript(case=case, lines=lines)
    # Saved with the conversation at the end of the turn.
    conversation.state["copied_seq"] = conversation.last_seq


def _hand_over(conversation: Conversation, dialogue: Dialogue, reason: str, detail: str) -> None:
    if conversation.case is None:
        _open_case_for_handover(conversation, dialogue)
    case = conversation.case
    if case is None:  # pragma: no cover - _open_case_for_handover always sets it
        return
    state = conversation.state
    snapshot = {
        "reason": reason,
        "detail": detail,
        "category": state.get("category"),
        "category_confidence": state.get("category_confidence"),
        "kind": state.get("kind"),
        "understanding": state.get("understanding"),
        "fields": dialogue.fields,
        "order": state.get("order"),
        "frustration_hits": state.get("frustration_hits", 0),
        "language": conversation.language,
    }
    calendar = sla.calendar_for(case)
    now = timezone.now()
    open_now = calendar.seconds_between(now, now + dt.timedelta(minutes=1)) > 0
    expected = now if open_now else calendar.add_seconds(now, 1)
    Handover.objects.create(
        conversation=conversation,
        case=case,
        reason=reason,
        detail=detail[:300],
        snapshot=snapshot,
        expected_at=expected,
    )
    with translation.override(case.language):
        note = [
            _("The assistant handed this conversation over: %(reason)s.")
            % {"reason": HandoverReason(reason).label},
        ]
        if detail:
            note.append(_("Detail: %(detail)s") % {"detail": detail})
        understanding = state.get("understanding") or {}
        if understanding:
            note.append(
                _(
                    "What the assistant understood: category %(category)s (confidence "
                    "%(confidence)s), kind %(kind)s, frustration %(frustration)s, language "
                    "%(language)s."
                )
                % {
                    "category": understanding.get("category_best", "-"),
                    "confidence": understanding.get("category_confidence", "-"),
                    "kind": understanding.get("kind", "-"),
                    "frustration": understanding.get("frustration", "-"),
                    "language": understanding.get("language", "-"),
                }
            )
        signs = state.get("frustration_signs") or []
        if reason == HandoverReason.FRUSTRATION and signs:
            note.append(
                _("Signs of frustration: %(signs)s")
                % {"signs": "; ".join(f"“{evidence}” ({signal})" for signal, evidence in signs)}
            )
        collected = dialogue.summary_lines() if dialogue.category() else []
        if collected:
            note.append(_("Collected:") + "\n" + "\n".join(f"• {line}" for line in collected))
        note.append(_("The customer is waiting in the chat: open the live chat to answer there."))
    priority = Priority.HIGH if reason == HandoverReason.FRUSTRATION else None
    case_actions.hand_over_to_person(
        case=case, reason=reason, note="\n".join(str(line) for line in note), priority=priority
    )
    conversation.status = ConversationStatus.HANDED_OVER
    state["step"] = "with_person"
    if open_now:
        message = _(
            "I am passing you to a person now, with everything you have told me (case "
            "%(reference)s). They will write here shortly; you can keep writing meanwhile."
        )
    else:
        message = _(
            "I am passing you to a person, with everything you have told me (case "
            "%(reference)s). Our team is not working right now: a person will answer here from "
            "%(when)s, and by email if you have left. You can keep writing meanwhile."
        )
    dialogue.say(
        message
        % {
            "reference": case.reference,
            "when": formats.date_format(timezone.localtime(expected), "DATETIME_FORMAT"),
        },
        expects="text",
    )


def _open_case_for_handover(conversation: Conversation, dialogue: Dialogue) -> None:
    """A hand-over before the summary: the case gets what was collected so far."""
    state = conversation.state
    if not state.get("category"):
        state["category"] = dialogue._best_category()
    dialogue.apply_prefill()
    replies_before = len(dialogue.replies)
    handover = dialogue.handover
    _open_case(conversation, dialogue)
    # The case's own closing words (deadline, survey) do not apply: a person takes over.
    del dialogue.replies[replies_before + 1 :]
    dialogue.handover = handover
    conversation.state["step"] = "with_person"


# -- files ---------------------------------------------------------------------------------


@transaction.atomic
def receive_upload(*, conversation: Conversation, checked: CheckedFile) -> list[ChatMessage]:
    """A file from the customer: kept with the conversation, then handled as a turn."""
    import uuid

    from django.core.files.base import ContentFile

    upload = ChatUpload(
        conversation=conversation,
        original_name=checked.name,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
    )
    upload.file.save(
        f"{uuid.uuid4().hex}.{checked.extension}", ContentFile(checked.content), save=False
    )
    upload.save()
    return post_customer_message(conversation=conversation, upload=upload)


# -- feedback --------------------------------------------------------------------------------


@transaction.atomic
def rate_message(*, conversation: Conversation, seq: int, helpful: bool) -> ChatMessage:
    """A thumbs up or down on one of the assistant's answers (a knowledge-base answer counts it)."""
    message = (
        ChatMessage.objects.select_for_update()
        .filter(conversation=conversation, seq=seq, author=Author.ASSISTANT)
        .first()
    )
    if message is None:
        raise ChatMessage.DoesNotExist
    previous = message.rating
    message.rating = 1 if helpful else -1
    message.save(update_fields=["rating"])
    article_id = conversation.state.get("last_article")
    if previous is None and article_id and message.expects == "rating":
        knowledge.count_feedback(article_id, helpful)
    return message


@transaction.atomic
def submit_survey(*, conversation: Conversation, score: int, comment: str = "") -> Conversation:
    """The satisfaction survey (1-5 and an optional comment), answered outside the dialogue."""
    conversation = _locked(conversation)
    conversation.csat_score = score
    conversation.csat_comment = comment.strip()[:2000]
    conversation.csat_at = timezone.now()
    if conversation.state.get("step") in ("survey", "survey_comment"):
        conversation.state["step"] = "ended"
        if conversation.status == ConversationStatus.ACTIVE:
            conversation.status = ConversationStatus.CLOSED
            conversation.ended_at = conversation.ended_at or timezone.now()
    _save(conversation)
    return conversation


# -- the agent's side ------------------------------------------------------------------------


@transaction.atomic
def take_conversation(*, conversation: Conversation, agent: User) -> Handover | None:
    """An agent takes a handed-over conversation: it is theirs, and so is its case."""
    conversation = _locked(conversation)
    handover = conversation.handovers.order_by("-created_at").first()
    if handover is not None and handover.taken_by_id is None:
        Handover.objects.filter(pk=handover.pk).update(taken_by=agent, taken_at=timezone.now())
    case = conversation.case
    if case is not None and case.assignee_id is None:
        case_actions.assign_case(case=case, assignee=agent, actor=agent)
    with translation.override(conversation.language):
        _append(
            conversation,
            Author.SYSTEM,
            _("%(name)s has joined the conversation.")
            % {"name": agent.get_short_name() or agent.get_username()},
        )
    _save(conversation)
    audit.record(
        audit.CHANGE, target=conversation, case=case, fields=[], actor=agent, detail={"taken": True}
    )
    return handover


@transaction.atomic
def agent_reply(*, conversation: Conversation, agent: User, body: str) -> ChatMessage:
    """An agent writes in the live chat; it is also the case's reply (not emailed: it is live)."""
    conversation = _locked(conversation)
    if conversation.status != ConversationStatus.HANDED_OVER:
        raise ConversationEnded
    message = _append(conversation, Author.AGENT, body, author_user=agent)
    if conversation.case is not None:
        case_actions.reply_to_customer(
            case=conversation.case, body=body, author=agent, status=None, email=False
        )
    conversation.state["copied_seq"] = conversation.last_seq
    _save(conversation)
    audit.record(audit.CREATE, target=message, case=conversation.case, fields=["body"], actor=agent)
    return message


@transaction.atomic
def end_live_chat(*, conversation: Conversation, agent: User) -> None:
    """The agent ends the live chat; the customer is asked for the satisfaction survey."""
    conversation = _locked(conversation)
    if conversation.status != ConversationStatus.HANDED_OVER:
        raise ConversationEnded
    conversation.status = ConversationStatus.CLOSED
    conversation.ended_at = timezone.now()
    dialogue = Dialogue(conversation)
    with translation.override(conversation.language):
        dialogue._ask_survey(_("The person has ended the chat. Thank you for your patience."))
    _say_all(conversation, dialogue.replies)
    _save(conversation)
