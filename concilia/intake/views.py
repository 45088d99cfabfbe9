"""Public pages: the complaint form, its confirmation, and the customers' tracking pages."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from concilia.cases.access import can_read, visible_cases
from concilia.cases.actions import add_customer_message
from concilia.cases.attachments import check_uploads
from concilia.cases.models import DECLARED_FIELDS, Attachment, Case, Channel
from concilia.cases.queries import active_categories
from concilia.core import audit
from concilia.core.throttling import anonymous_submissions, client_address, sign_in_requests
from concilia.customers import auth as customer_auth
from concilia.customers.actions import (
    SignInLinkExpired,
    SignInLinkInvalid,
    SignInLinkUsed,
    normalize_email,
    redeem_sign_in_link,
    request_sign_in_link,
    usable_sign_in_link,
)
from concilia.customers.models import email_index
from concilia.customers.queries import current_notice
from concilia.intake.actions import (
    discard_pending_uploads,
    keep_pending_uploads,
    pending_files,
    submit_complaint,
)
from concilia.intake.forms import ComplaintForm, OfferAnswerForm, ReplyForm, TrackForm
from concilia.intake.models import PendingUpload
from concilia.resolution import actions as resolution
from concilia.resolution import mediation
from concilia.resolution.engine import describe
from concilia.resolution.forms import ProposalAnswerForm
from concilia.resolution.models import Offer, OfferStatus, Proposal, ProposalStatus

SUBMITTED_KEY = "concilia_submitted"


def _use_path_language(request: HttpRequest, language: str | None) -> None:
    """The Spanish paths (/reclamaciones/…) open in Spanish unless the person chose a language."""
    if language and settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
        translation.activate(language)
        request.LANGUAGE_CODE = language


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request, "intake/home.html", {"customer": customer_auth.current_customer(request)}
    )


def _category_rules() -> dict[str, dict[str, str]]:
    return {c.code: {f: c.rule(f) for f in DECLARED_FIELDS} for c in active_categories().values()}


def _parse_submission_id(value: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return uuid.uuid4()


@require_http_methods(["GET", "POST"])
def complaint_new(request: HttpRequest, language: str | None = None) -> HttpResponse:
    _use_path_language(request, language)
    customer = customer_auth.current_customer(request)
    notice = current_notice()
    status = 200
    file_errors: list[str] = []
    if request.method == "POST":
        submission_id = _parse_submission_id(request.POST.get("submission_id"))
        form = ComplaintForm(request.POST)
        kept = list(PendingUpload.objects.filter(submission_id=submission_id))
        removed = set(request.POST.getlist("remove_upload"))
        dropped = [u for u in kept if str(u.pk) in removed]
        kept = [u for u in kept if str(u.pk) not in removed]
        discard_pending_uploads(dropped)
        new_files, errors = check_uploads(request.FILES.getlist("attachments"))
        file_errors = [message for error in errors for message in error.messages]
        limit = settings.CONCILIA_MAX_ATTACHMENTS
        if len(kept) + len(new_files) > limit:
            file_errors.append(_("You can attach at most %(limit)d files.") % {"limit": limit})
            new_files = new_files[: max(0, limit - len(kept))]
        # Only complete submissions count against the limit: correcting a form costs nothing.
        valid = form.is_valid() and not file_errors
        allowed = (
            not valid
            or request.user.is_staff
            or anonymous_submissions().hit(client_address(request))
        )
        if not allowed:
            status = 429
            messages.error(
                request,
                _(
                    "We have received many submissions from your connection. "
                    "Please try again later; what you typed is still here."
                ),
            )
        if valid and allowed:
            submission = submit_complaint(
                data=form.cleaned_data,
                channel=Channel.WEB,
                language=translation.get_language() or settings.LANGUAGE_CODE,
                files=pending_files(kept) + new_files,
                idempotency_scope="web",
                idempotency_key=str(submission_id),
                verified_email=customer.email if customer else "",
            )
            if submission.created:
                discard_pending_uploads(kept)
            submitted = request.session.get(SUBMITTED_KEY, [])
            request.session[SUBMITTED_KEY] = [*submitted[-19:], submission.case.reference]
            return redirect("intake:complaint-submitted", reference=submission.case.reference)
        keep_pending_uploads(submission_id=submission_id, files=new_files)
        kept = list(PendingUpload.objects.filter(submission_id=submission_id))
        if status == 200:
            status = 400
    else:
        submission_id = uuid.uuid4()
        initial: dict[str, Any] = {"notice_version": notice.version}
        if customer is not None:
            initial.update(name=customer.name, email=customer.email, phone=customer.phone)
        if request.GET.get("category"):
            initial["category"] = request.GET["category"]
        form = ComplaintForm(initial=initial)
        kept = []
    return render(
        request,
        "intake/complaint_form.html",
        {
            "form": form,
            "notice": notice,
            "submission_id": submission_id,
            "pending_uploads": kept,
            "file_errors": file_errors,
            "category_rules": _category_rules(),
            "customer": customer,
            "max_attachments": settings.CONCILIA_MAX_ATTACHMENTS,
            "max_attachment_bytes": settings.CONCILIA_MAX_ATTACHMENT_BYTES,
        },
        status=status,
    )


def _visible_case(request: HttpRequest, reference: str) -> Case:
    """The case if the signed-in customer owns it; otherwise 404, whether or not it exists."""
    customer = customer_auth.current_customer(request)
    if customer is None:
        raise Http404
    return get_object_or_404(
        Case.objects.select_related("category", "customer"), reference=reference, customer=customer
    )


def complaint_submitted(request: HttpRequest, reference: str) -> HttpResponse:
    if reference not in request.session.get(SUBMITTED_KEY, []):
        case = _visible_case(request, reference)
    else:
        case = get_object_or_404(
            Case.objects.select_related("category", "customer"), reference=reference
        )
    return render(request, "intake/complaint_submitted.html", {"case": case})


@require_http_methods(["GET", "POST"])
def track(request: HttpRequest, language: str | None = None) -> HttpResponse:
    _use_path_language(request, language)
    customer = customer_auth.current_customer(request)
    if request.method == "POST":
        form = TrackForm(request.POST)
        if form.is_valid():
            reference = form.cleaned_data["reference"]
            email = normalize_email(form.cleaned_data["email"])
            if (
                customer is not None
                and customer.email == email
                and Case.objects.filter(reference=reference, customer=customer).exists()
            ):
                return redirect("intake:case-detail", reference=reference)
            limiter = sign_in_requests()
            if not (limiter.hit(client_address(request)) and limiter.hit(email)):
                messages.error(request, _("Too many requests. Please wait a while and try again."))
                return render(request, "intake/track.html", {"form": form}, status=429)
            case = (
                Case.objects.select_related("customer")
                .filter(reference=reference, customer__email_index=email_index(email))
                .first()
            )
            if case is not None:
                request_sign_in_link(customer=case.customer, next_reference=case.reference)
            # The same answer whether or not the pair matched: nobody learns whose case exists.
            return render(
                request,
                "intake/track_sent.html",
                {"email": email, "minutes": settings.CONCILIA_SIGN_IN_LINK_MINUTES},
            )
        return render(request, "intake/track.html", {"form": form}, status=400)
    form = TrackForm(initial={"reference": request.GET.get("reference", "")})
    return render(request, "intake/track.html", {"form": form, "customer": customer})


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and POST uses the link, so mail scanners that follow links do not spend it."""
    try:
        if request.method != "POST":
            usable_sign_in_link(token)
            return render(request, "intake/sign_in.html", {"token": token})
        link = redeem_sign_in_link(token=token)
    except SignInLinkInvalid:
        return _link_problem(request, _("This sign-in link is not valid."))
    except SignInLinkUsed:
        return _link_problem(request, _("This sign-in link has already been used."))
    except SignInLinkExpired:
        return _link_problem(request, _("This sign-in link has expired."))
    customer_auth.sign_in(request, link.customer)
    audit.record(audit.SIGN_IN, actor=link.customer)
    if link.next_reference:
        return redirect("intake:case-detail", reference=link.next_reference)
    return redirect("intake:my-cases")


def _link_problem(request: HttpRequest, problem: str) -> HttpResponse:
    return render(request, "intake/sign_in_problem.html", {"problem": problem}, status=410)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    customer_auth.sign_out(request)
    messages.info(request, _("You have signed out."))
    return redirect("intake:home")


def my_cases(request: HttpRequest) -> HttpResponse:
    customer = customer_auth.current_customer(request)
    if customer is None:
        return redirect("intake:track")
    cases = list(
        Case.objects.for_customer(customer).select_related("category").order_by("-created_at")
    )
    audit.record(audit.LIST, target=Case, listed=cases, customer=customer, actor=customer)
    return render(request, "intake/my_cases.html", {"customer": customer, "cases": cases})


@require_http_methods(["GET", "POST"])
def case_detail(request: HttpRequest, reference: str) -> HttpResponse:
    if customer_auth.current_customer(request) is None:
        return redirect(reverse("intake:track") + f"?reference={reference}")
    case = _visible_case(request, reference)
    reply_form = ReplyForm()
    file_errors: list[str] = []
    status = 200
    if request.method == "POST":
        reply_form = ReplyForm(request.POST)
        files, errors = check_uploads(request.FILES.getlist("attachments"))
        file_errors = [message for error in errors for message in error.messages]
        if len(files) > settings.CONCILIA_MAX_ATTACHMENTS:
            file_errors.append(
                _("You can attach at most %(limit)d files.")
                % {"limit": settings.CONCILIA_MAX_ATTACHMENTS}
            )
        if reply_form.is_valid() and not file_errors:
            add_customer_message(case=case, body=reply_form.cleaned_data["body"], files=files)
            if files:
                resolution.evidence_received(case=case)
            messages.success(request, _("Your message has been added to the case."))
            return redirect("intake:case-detail", reference=case.reference)
        status = 400
    return _case_page(request, case, reply_form=reply_form, file_errors=file_errors, status=status)


def _case_page(
    request: HttpRequest,
    case: Case,
    *,
    reply_form: ReplyForm | None = None,
    offer_form: OfferAnswerForm | None = None,
    proposal_form: ProposalAnswerForm | None = None,
    file_errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    thread = case.messages.filter(internal=False).prefetch_related("attachments")
    opening_attachments = case.attachments.filter(message__isnull=True)
    offer = Offer.objects.filter(case=case, status=OfferStatus.OPEN).first()
    proposal = Proposal.objects.filter(case=case, status=ProposalStatus.OPEN).first()
    language = translation.get_language() or case.language
    options = (
        [(n, describe(s, language[:2])) for n, s in enumerate(offer.settlements())] if offer else []
    )
    agreed = [
        (r, describe(r.settlement(), language[:2]))
        for r in case.resolutions.select_related("decision").order_by("created_at")
    ]
    audit.record(audit.VIEW, case=case, actor=case.customer)  # the customer reads their case
    return render(
        request,
        "intake/case_detail.html",
        {
            "case": case,
            "thread": thread,
            "opening_attachments": opening_attachments,
            "reply_form": reply_form or ReplyForm(),
            "file_errors": file_errors or [],
            "offer": offer if offer is not None and offer.is_open else None,
            "offer_options": options,
            "offer_form": offer_form or OfferAnswerForm(initial={"option": 0}),
            "agreed": agreed,
            "proposal": proposal,
            "proposal_text": describe(proposal.settlement(), language[:2]) if proposal else "",
            "proposal_answered": proposal.answers.filter(party=None).first() if proposal else None,
            "proposal_form": proposal_form or ProposalAnswerForm(),
        },
        status=status,
    )


def _posted_pk(request: HttpRequest, name: str) -> int:
    """A posted row id; 0 (no row) for anything else, which would fail in the query."""
    value = request.POST.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else 0


def _posted_uuid(request: HttpRequest, name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.POST.get(name, ""))
    except ValueError:
        return None


@require_POST
def answer_proposal(request: HttpRequest, reference: str) -> HttpResponse:
    """The customer accepts or rejects the mediator's proposal from the tracking page."""
    if customer_auth.current_customer(request) is None:
        return redirect(reverse("intake:track") + f"?reference={reference}")
    case = _visible_case(request, reference)
    proposal = get_object_or_404(Proposal, case=case, pk=_posted_pk(request, "proposal"))
    form = ProposalAnswerForm(request.POST)
    if not form.is_valid():
        return _case_page(request, case, proposal_form=form, status=400)
    try:
        mediation.answer_proposal(
            proposal=proposal,
            party=None,
            accept=form.cleaned_data["answer"] == "accept",
            reason=form.cleaned_data["reason"],
        )
    except mediation.AlreadyAnswered:
        messages.error(request, _("You have already answered this proposal."))
    except mediation.ProposalNotOpen:
        messages.error(request, _("This proposal is no longer open."))
    else:
        messages.success(request, _("Thank you: your answer has been recorded."))
    return redirect("intake:case-detail", reference=case.reference)


@require_POST
def answer_offer(request: HttpRequest, reference: str) -> HttpResponse:
    """The customer accepts, counters or rejects the case's open offer from the tracking page."""
    if customer_auth.current_customer(request) is None:
        return redirect(reverse("intake:track") + f"?reference={reference}")
    case = _visible_case(request, reference)
    offer = get_object_or_404(Offer, case=case, public_id=_posted_uuid(request, "offer"))
    form = OfferAnswerForm(request.POST)
    if not form.is_valid():
        return _case_page(request, case, offer_form=form, status=400)
    data = form.cleaned_data
    try:
        if data["answer"] == OfferAnswerForm.ACCEPT:
            resolution.accept_offer(offer=offer, option=data["option"])
            messages.success(
                request,
                _(
                    "Thank you: you have accepted the offer. We have sent you the agreement by email."
                ),
            )
        elif data["answer"] == OfferAnswerForm.COUNTER:
            result = resolution.counter_offer(offer=offer, amount=data["amount"])
            if result.resolution is not None:
                messages.success(
                    request,
                    _(
                        "Thank you: we agree to your amount. We have sent you the agreement by email."
                    ),
                )
            else:
                messages.info(request, result.message)
        else:
            resolution.reject_offer(offer=offer, reason=data["reason"])
            messages.info(
                request,
                _("Thank you for telling us. A person from our team will look at your case."),
            )
    except resolution.InvalidAnswer as error:
        form.add_error(None, str(error))
        return _case_page(request, case, offer_form=form, status=400)
    except resolution.OfferExpired:
        messages.error(
            request, _("This offer has expired. A person from our team will look at your case.")
        )
    except resolution.OfferNotOpen:
        messages.error(request, _("This offer has already been answered."))
    return redirect("intake:case-detail", reference=case.reference)


def attachment_download(request: HttpRequest, reference: str, attachment_id: int) -> HttpResponse:
    """Serve an attachment to staff who may see the case, or to the customer who owns it.

    Images and PDFs open in the browser (the helpdesk previews images) under a policy that runs
    nothing; any other type is downloaded. Files on internal notes are for staff only.
    """
    staff = request.user.is_authenticated and can_read(request.user)
    if staff:
        case = get_object_or_404(visible_cases(request.user), reference=reference)
    else:
        case = _visible_case(request, reference)
    attachment = get_object_or_404(Attachment, pk=attachment_id, case=case)
    if attachment.message_id and attachment.message.internal and not staff:
        raise Http404
    audit.record(audit.DOWNLOAD, target=attachment, case=case, fields=["file"])
    try:
        handle = attachment.file.open("rb")
    except (FileNotFoundError, ValidationError) as exc:
        raise Http404 from exc
    inline = attachment.previewable or attachment.content_type == "application/pdf"
    response = FileResponse(
        handle,
        content_type=attachment.content_type,
        as_attachment=not inline,
        filename=attachment.original_name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    )
    response["Cache-Control"] = "private, no-store"
    return response
