"""The page a third party reaches from its signed link: the case as far as it needs to know it,
its statement and evidence, and the mediator's proposal to answer."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from concilia.cases.attachments import check_uploads
from concilia.resolution import engine, mediation
from concilia.resolution.forms import ProposalAnswerForm, StatementForm
from concilia.resolution.models import Proposal, ProposalStatus


@require_http_methods(["GET", "POST"])
def party_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        party = mediation.party_from_link(token)
    except mediation.PartyLinkExpired:
        return _problem(request, _("This link has expired. Ask the company for a new one."))
    except mediation.PartyLinkInvalid:
        return _problem(request, _("This link is not valid."))
    translation.activate(party.language)
    request.LANGUAGE_CODE = party.language  # type: ignore[attr-defined]
    case = party.case
    proposal = Proposal.objects.filter(case=case, status=ProposalStatus.OPEN).first()
    statement_form = StatementForm()
    answer_form = ProposalAnswerForm()
    file_errors: list[str] = []
    status = 200
    if request.method == "POST" and not case.is_open:
        messages.error(request, _("This case is closed."))
        return redirect("parties:page", token=token)
    if request.method == "POST" and request.POST.get("form") == "statement":
        statement_form = StatementForm(request.POST)
        files, errors = check_uploads(request.FILES.getlist("attachments"))
        file_errors = [message for error in errors for message in error.messages]
        if len(files) > settings.CONCILIA_MAX_ATTACHMENTS:
            file_errors.append(
                _("You can attach at most %(limit)d files.")
                % {"limit": settings.CONCILIA_MAX_ATTACHMENTS}
            )
        if statement_form.is_valid() and not file_errors:
            mediation.add_statement(
                case=case, party=party, body=statement_form.cleaned_data["body"], files=files
            )
            messages.success(request, _("Thank you: your statement has been added to the case."))
            return redirect("parties:page", token=token)
        status = 400
    elif request.method == "POST" and request.POST.get("form") == "answer" and proposal:
        answer_form = ProposalAnswerForm(request.POST)
        if answer_form.is_valid():
            try:
                mediation.answer_proposal(
                    proposal=proposal,
                    party=party,
                    accept=answer_form.cleaned_data["answer"] == "accept",
                    reason=answer_form.cleaned_data["reason"],
                )
            except mediation.AlreadyAnswered:
                messages.error(request, _("You have already answered this proposal."))
            except mediation.ProposalNotOpen:
                messages.error(request, _("This proposal is no longer open."))
            else:
                messages.success(request, _("Thank you: your answer has been recorded."))
            return redirect("parties:page", token=token)
        status = 400
    answered = proposal.answers.filter(party=party).first() if proposal else None
    return render(
        request,
        "resolution/party/page.html",
        {
            "party": party,
            "case": case,
            "statements": party.statements.all(),
            "proposal": proposal,
            "proposal_text": engine.describe(proposal.settlement(), party.language)
            if proposal
            else "",
            "answered": answered,
            "statement_form": statement_form,
            "answer_form": answer_form,
            "file_errors": file_errors,
        },
        status=status,
    )


def _problem(request: HttpRequest, problem: str) -> HttpResponse:
    return render(request, "resolution/party/problem.html", {"problem": problem}, status=410)
