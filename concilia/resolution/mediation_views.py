"""The mediator's page in the helpdesk: every party's statements side by side, invitations to
third parties, and the proposal to all of them."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from concilia.cases.access import can_supervise, may_change, visible_cases
from concilia.cases.models import Case
from concilia.cases.views import helpdesk_view
from concilia.resolution import engine, mediation
from concilia.resolution.forms import InvitePartyForm, ProposalForm
from concilia.resolution.models import Proposal, ProposalStatus


def _mediated_case(request: HttpRequest, reference: str) -> Case:
    case = (
        visible_cases(request.user)
        .select_related("customer", "category")
        .filter(reference=reference.strip().upper())
        .first()
    )
    if case is None:
        raise Http404
    # A neutral person: supervisors mediate, agents work their cases.
    if not (can_supervise(request.user) and may_change(request.user, case)):
        raise PermissionDenied
    return case


@require_http_methods(["GET", "POST"])
@helpdesk_view
def mediation_page(request: HttpRequest, reference: str) -> HttpResponse:
    case = _mediated_case(request, reference)
    invite_form = InvitePartyForm(initial={"language": case.language})
    proposal_form = ProposalForm()
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "invite":
                invite_form = InvitePartyForm(request.POST)
                if invite_form.is_valid():
                    party = mediation.invite_party(
                        case=case, actor=request.user, **invite_form.cleaned_data
                    )
                    messages.success(
                        request, _("%(name)s has been invited by email.") % {"name": party.name}
                    )
                    return redirect("mediation:page", reference=case.reference)
            elif action == "propose":
                proposal_form = ProposalForm(request.POST)
                if proposal_form.is_valid():
                    settlement = proposal_form.settlement(case.currency)
                    if settlement is None:  # pragma: no cover - the proposal's kind is required
                        raise mediation.InvalidMediation(_("Choose what to give."))
                    mediation.make_proposal(
                        case=case,
                        mediator=request.user,
                        settlement=settlement,
                        explanation=proposal_form.cleaned_data["explanation"],
                    )
                    messages.success(request, _("The proposal has been sent to every party."))
                    return redirect("mediation:page", reference=case.reference)
        except mediation.InvalidMediation as error:
            (invite_form if action == "invite" else proposal_form).add_error(None, str(error))
        status = 400
    parties = list(case.parties.prefetch_related("statements"))
    columns = [
        {
            "who": _("The customer"),
            "party": None,
            "opening": case.description,
            "entries": [
                *case.messages.filter(internal=False, author_kind="customer").values_list(
                    "created_at", "body"
                ),
                *case.statements.filter(party__isnull=True).values_list("created_at", "body"),
            ],
        },
        *(
            {
                "who": str(party),
                "party": party,
                "opening": "",
                "entries": [(s.created_at, s.body) for s in party.statements.all()],
            }
            for party in parties
        ),
    ]
    for column in columns:
        column["entries"].sort(key=lambda entry: entry[0])
    proposals = list(Proposal.objects.filter(case=case).prefetch_related("answers__party"))
    for proposal in proposals:
        proposal.text = engine.describe(proposal.settlement(), case.language)  # type: ignore[attr-defined]
    return render(
        request,
        "resolution/mediation/page.html",
        {
            "case": case,
            "columns": columns,
            "proposals": proposals,
            "open_proposal": next((p for p in proposals if p.status == ProposalStatus.OPEN), None),
            "invite_form": invite_form,
            "proposal_form": proposal_form,
        },
        status=status,
    )
