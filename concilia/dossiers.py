"""The helpdesk's download of a case dossier (concilia.cases.dossier) with the case's policy
decisions, offers and agreed resolutions. It lives above `cases` and `resolution` because it
reads both: `cases` never imports `resolution`."""

from __future__ import annotations

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from concilia.cases import actions as case_actions
from concilia.cases.access import visible_cases
from concilia.cases.dossier import DecisionLine, build
from concilia.cases.forms import DossierForm
from concilia.cases.models import ActorKind, Case, EventKind
from concilia.cases.views import helpdesk_view
from concilia.core import audit
from concilia.resolution.engine import describe
from concilia.resolution.models import Decision, Offer, Resolution


def decision_lines(case: Case, language: str) -> list[DecisionLine]:
    """Every decision, offer and agreed resolution of the case, oldest first, in `language`."""
    with translation.override(language):
        lines = [
            DecisionLine(
                at=decision.created_at,
                what=f"{decision.get_outcome_display()}"
                + (f" · {_('rule')} {decision.rule}" if decision.rule else "")
                + (
                    f" · {_('policy')} {decision.policy_version}" if decision.policy_version else ""
                ),
                detail="\n".join(
                    text
                    for text in (
                        decision.reason(language),
                        decision.override_reason
                        and _("Reason for the override: %(reason)s")
                        % {"reason": decision.override_reason},
                    )
                    if text
                ),
                by=str(decision.actor_user)
                if decision.actor_user_id
                else decision.get_source_display(),
            )
            for decision in Decision.objects.filter(case=case).select_related(
                "policy_version__policy", "actor_user"
            )
        ]
        lines += [
            DecisionLine(
                at=offer.created_at,
                what=_("Offer (round %(round)d): %(status)s")
                % {"round": offer.round, "status": offer.get_status_display()},
                detail=" / ".join(describe(s, language) for s in offer.settlements()),
            )
            for offer in Offer.objects.filter(case=case)
        ]
        lines += [
            DecisionLine(
                at=resolution.created_at,
                what=_("Agreed: %(what)s") % {"what": describe(resolution.settlement(), language)},
                by=str(resolution.agreed_by_user)
                if resolution.agreed_by_user_id
                else resolution.get_agreed_by_display(),
            )
            for resolution in Resolution.objects.filter(case=case).select_related("agreed_by_user")
        ]
    return sorted(lines, key=lambda line: line.at)


@require_GET
@helpdesk_view
def download(request: HttpRequest, reference: str) -> HttpResponse:
    """The dossier as a PDF attachment, for staff who may see the case (404 for the others)."""
    case = (
        visible_cases(request.user)
        .select_related("customer", "category", "jurisdiction")
        .filter(reference=reference.strip().upper())
        .first()
    )
    if case is None:
        raise Http404
    form = DossierForm(request.GET)
    if not form.is_valid():
        return HttpResponse(
            _("Choose Spanish or English for the dossier."), status=400, content_type="text/plain"
        )
    language = form.cleaned_data["language"] or case.language
    internal = form.cleaned_data["internal"]
    pdf = build(
        case,
        language=language,
        internal=internal,
        decisions=decision_lines(case, language),
        generated_by=request.user,
    )
    # Who took personal data out of the helpdesk, and which version: in the case's history and
    # in the audit log.
    with transaction.atomic():
        case_actions.record_event(
            case=case,
            kind=EventKind.DOSSIER_EXPORTED,
            actor_kind=ActorKind.STAFF,
            actor_user=request.user,
            data={"language": language, "internal": internal},
        )
        audit.record(
            audit.AuditAction.EXPORT,
            case=case,
            actor=request.user,
            detail={"document": "dossier", "language": language, "internal": internal},
        )
    response = HttpResponse(pdf, content_type="application/pdf")
    suffix = "-internal" if internal else ""
    response["Content-Disposition"] = f'attachment; filename="{case.reference}{suffix}.pdf"'
    response["Cache-Control"] = "no-store"
    return response
