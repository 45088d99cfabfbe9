"""Forms of the agents' helpdesk: each validates one action's input."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from concilia.accounts.models import Team, User
from concilia.cases.models import Case, Jurisdiction, Outcome, Priority, ReplyTemplate, Status


class VersionedForm(forms.Form):
    """Carries the case version the agent saw, so a stale save is refused (optimistic locking)."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class ReplyForm(VersionedForm):
    template = forms.ModelChoiceField(
        label=_("Template"),
        queryset=ReplyTemplate.objects.filter(active=True),
        to_field_name="code",
        required=False,
    )
    body = forms.CharField(
        label=_("Reply to the customer"), widget=forms.Textarea, max_length=20000
    )
    then = forms.ChoiceField(
        label=_("Then"),
        choices=[
            (Status.PENDING_CUSTOMER, _("Wait for the customer")),
            (Status.PENDING_AGENT, _("Keep waiting for us")),
            (Status.CLOSED, _("Close the case")),
        ],
        initial=Status.PENDING_CUSTOMER,
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=[("", "—"), *Outcome.choices], required=False
    )

    def clean(self):
        data = super().clean()
        if data.get("then") == Status.CLOSED and not data.get("outcome"):
            self.add_error("outcome", _("Say how the case ends before closing it."))
        return data


class NoteForm(VersionedForm):
    body = forms.CharField(label=_("Internal note"), widget=forms.Textarea, max_length=20000)


class StatusForm(VersionedForm):
    status = forms.ChoiceField(label=_("Status"), choices=Status.choices)
    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=[("", "—"), *Outcome.choices], required=False
    )

    def clean(self):
        data = super().clean()
        if data.get("status") == Status.CLOSED and not data.get("outcome"):
            self.add_error("outcome", _("Say how the case ends before closing it."))
        return data


class JurisdictionForm(VersionedForm):
    jurisdiction = forms.ModelChoiceField(
        label=_("Jurisdiction"),
        queryset=Jurisdiction.objects.active(),
        to_field_name="code",
        required=False,
        empty_label=_("None (no legal deadline)"),
        help_text=_("Whose law applies: the legal deadline is counted again from reception."),
    )


class DossierForm(forms.Form):
    """What the dossier a regulator or an ADR body asks for should hold."""

    language = forms.ChoiceField(
        label=_("Language"), choices=[("es", _("Spanish")), ("en", _("English"))], required=False
    )
    internal = forms.BooleanField(
        label=_("Include internal notes (internal version)"), required=False
    )


class PriorityForm(VersionedForm):
    priority = forms.ChoiceField(label=_("Priority"), choices=Priority.choices)


class AssignForm(VersionedForm):
    team = forms.ModelChoiceField(
        label=_("Team"),
        queryset=Team.objects.filter(active=True),
        to_field_name="code",
        required=False,
    )
    assignee = forms.ModelChoiceField(
        label=_("Assignee"), queryset=User.objects.filter(is_active=True), required=False
    )
    note = forms.CharField(
        label=_("Note for the new owner"), widget=forms.Textarea, max_length=2000, required=False
    )

    def __init__(self, *args, assignable=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Any active person who works cases can be chosen; clean() checks they fit the team.
        self.fields["assignee"].queryset = (
            User.objects.filter(is_active=True, groups__permissions__codename="work_cases")
            .distinct()
            .order_by("first_name", "username")
        )
        self.assignable = {user.pk for user in assignable} if assignable is not None else None

    def clean(self):
        data = super().clean()
        team, assignee = data.get("team"), data.get("assignee")
        if team is not None and not (data.get("note") or "").strip():
            self.add_error("note", _("Leave a note for the team that takes the case over."))
        if assignee is not None:
            if team is not None:
                if not team.members().filter(pk=assignee.pk).exists():
                    self.add_error("assignee", _("This person is not in the chosen team."))
            elif self.assignable is not None and assignee.pk not in self.assignable:
                self.add_error("assignee", _("Choose someone from your teams, or pick a team."))
        return data


class ContactForm(VersionedForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)

    def __init__(self, *args: Any, case: Case | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.case = case

    def clean_phone(self) -> str:
        phone = self.cleaned_data.get("phone", "").strip()
        case = self.case
        if (
            case is not None
            and phone
            and phone != case.customer.phone
            and not case.category.asks("phone")
        ):
            raise forms.ValidationError(
                _("%(category)s cases do not need a phone number, so none is kept."),
                code="not_needed",
                params={"category": case.category.name},
            )
        return phone


class ReminderForm(forms.Form):
    due_at = forms.DateTimeField(
        label=_("Alert on"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    note = forms.CharField(label=_("What to do then"), max_length=300)


BULK_ACTIONS = {
    "assign": _("Assign to"),
    "status": _("Change status to"),
    "priority": _("Change priority to"),
    "close": _("Close with outcome"),
}


class BulkForm(forms.Form):
    """One change applied to the cases ticked in the queue."""

    action = forms.ChoiceField(label=_("With the selected cases"), choices=BULK_ACTIONS.items())
    assignee = forms.ModelChoiceField(
        label=_("Assignee"), queryset=User.objects.none(), required=False
    )
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[("", "—"), *[c for c in Status.choices if c[0] != Status.CLOSED]],
        required=False,
    )
    priority = forms.ChoiceField(
        label=_("Priority"), choices=[("", "—"), *Priority.choices], required=False
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=[("", "—"), *Outcome.choices], required=False
    )

    def __init__(self, *args, assignable=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = User.objects.filter(
            pk__in=[user.pk for user in assignable]
        ).order_by("first_name", "username")

    def clean(self):
        data = super().clean()
        needed = {
            "assign": ("assignee", _("Choose who takes the cases.")),
            "status": ("status", _("Choose the new status.")),
            "priority": ("priority", _("Choose the new priority.")),
            "close": ("outcome", _("Say how the cases end before closing them.")),
        }.get(data.get("action", ""))
        if needed and not data.get(needed[0]):
            self.add_error(needed[0], needed[1])
        return data


class LinkForm(forms.Form):
    """Link this case to another, or merge it into another as a duplicate of the same customer."""

    other = forms.CharField(label=_("Other case (reference)"), max_length=40)
    how = forms.ChoiceField(
        label=_("How"),
        choices=[
            ("related", _("Link as related")),
            ("merge", _("Merge this case into the other (duplicate)")),
        ],
        initial="related",
    )

    def __init__(self, *args, case=None, visible=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.case, self.visible = case, visible

    def clean_other(self):
        reference = self.cleaned_data["other"].strip().upper()
        other = (
            self.visible.filter(reference=reference).first() if self.visible is not None else None
        )
        if other is None:
            raise forms.ValidationError(_("There is no case with this reference that you can see."))
        if self.case is not None and other.pk == self.case.pk:
            raise forms.ValidationError(_("Choose a different case."))
        return other

    def clean(self):
        data = super().clean()
        other, case = data.get("other"), self.case
        if data.get("how") == "merge" and other is not None and case is not None:
            if other.customer_id != case.customer_id:
                self.add_error("other", _("Only cases of the same customer can be merged."))
            elif Status.CLOSED in (other.status, case.status):
                self.add_error("other", _("Closed cases cannot be merged; link them instead."))
        return data
