"""Helpdesk pages of the resolution engine: an agent overrides a case's automated decision."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from concilia.cases.access import may_change, visible_cases
from concilia.cases.views import helpdesk_view, render_case_page
from concilia.resolution import actions
from concilia.resolution.forms import OverrideForm
from concilia.resolution.models import Decision


@require_POST
@helpdesk_view
def override(request: HttpRequest, reference: str) -> HttpResponse:
    """Replace the case's automated decision (a settlement, or none), with a mandatory reason."""
    case = visible_cases(request.user).filter(reference=reference.strip().upper()).first()
    if case is None:
        raise Http404
    if not may_change(request.user, case):
        raise PermissionDenied
    form = OverrideForm(request.POST)
    decision = None
    if form.is_valid():
        decision = Decision.objects.filter(case=case, pk=form.cleaned_data["decision"]).first()
        if decision is None:
            form.add_error(None, _("That decision is not this case's."))
    if decision is None:
        # The case page again, the form keeping what was typed and saying what to fix.
        request.override_form = form  # type: ignore[attr-defined]
        return render_case_page(request, case, status=400)
    data = form.cleaned_data
    settlement = form.settlement(case.currency)
    actions.override_decision(
        decision=decision, actor=request.user, reason=data["reason"], settlement=settlement
    )
    messages.success(
        request, _("The decision was overridden; your reason is in the case's history.")
    )
    return redirect("helpdesk:case", reference=case.reference)
