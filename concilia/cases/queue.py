"""The agents' queue: saved views, combinable filters kept in the URL, sorting and keyset pages.

Pages are cut with a keyset (the last row's sort value and id), never OFFSET, so a page costs the
same at row ten and at row a million; the total is not counted for the same reason.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.db.models import Case as When_
from django.db.models import IntegerField, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.accounts.models import Team, User
from concilia.cases import search
from concilia.cases.access import team_ids, visible_cases
from concilia.cases.models import Case, Category, Kind, Priority, Status
from concilia.customers.models import email_index, names_contain

PAGE_SIZE = 50

VIEWS = {
    "mine": _("Mine"),
    "team_unassigned": _("My teams' unassigned"),
    "waiting_us": _("Waiting for us"),
    "waiting_customer": _("Waiting for the customer"),
    "overdue": _("Overdue"),
    "closed": _("Closed"),
    "all": _("All I can see"),
}

SORTS = {
    "deadline": _("Deadline"),
    "priority": _("Priority"),
    "age": _("Oldest first"),
    "activity": _("Last activity"),
}

ALERTS = {"overdue": _("Overdue"), "due_today": _("Due today"), "future": _("Due later")}

PRIORITY_RANK = When_(
    *(When(priority=p, then=Value(rank)) for rank, p in enumerate(Priority.values)),
    output_field=IntegerField(),
)


class QueueForm(forms.Form):
    view = forms.ChoiceField(label=_("View"), choices=list(VIEWS.items()), required=False)
    q = forms.CharField(
        label=_("Text"),
        max_length=200,
        required=False,
        # The texts are encrypted; under three characters there is nothing the index can look up.
        widget=forms.TextInput(
            attrs={
                "title": _(
                    "Any part of the subject, description or messages. Three characters or more "
                    "search every case; one or two only the 2,000 with the latest activity."
                )
            }
        ),
    )
    reference = forms.CharField(label=_("Reference"), max_length=40, required=False)
    # Customers' emails and names are stored encrypted (docs/encryption.md): an email is found
    # whole (by its keyed hash), a name by whole words, never by a part of either.
    email = forms.CharField(
        label=_("Customer email"),
        max_length=254,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("the whole address")}),
    )
    name = forms.CharField(
        label=_("Customer name"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("whole words, any order")}),
    )
    status = forms.MultipleChoiceField(label=_("Status"), choices=Status.choices, required=False)
    category = forms.ModelChoiceField(
        label=_("Category"), queryset=Category.objects.all(), to_field_name="code", required=False
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=[("", "—"), *Kind.choices], required=False)
    priority = forms.ChoiceField(
        label=_("Priority"), choices=[("", "—"), *Priority.choices], required=False
    )
    assignee = forms.CharField(label=_("Assignee"), required=False)  # a user id, "me" or "none"
    team = forms.ModelChoiceField(
        label=_("Team"),
        queryset=Team.objects.filter(active=True),
        to_field_name="code",
        required=False,
    )
    waiting_days = forms.IntegerField(
        label=_("Waiting at least (days)"), min_value=0, max_value=3650, required=False
    )
    alert = forms.ChoiceField(
        label=_("Deadline"), choices=[("", "—"), *ALERTS.items()], required=False
    )
    created_from = forms.DateField(label=_("Created from"), required=False)
    created_to = forms.DateField(label=_("Created until"), required=False)
    sort = forms.ChoiceField(label=_("Sort by"), choices=list(SORTS.items()), required=False)
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if email and "@" not in email:
            raise forms.ValidationError(
                _(
                    "Enter the customer's whole email address: addresses are stored encrypted, so "
                    "a part of one cannot be searched."
                ),
                code="partial_email",
            )
        return email

    def clean_assignee(self) -> str:
        value = self.cleaned_data["assignee"].strip()
        if value in ("", "me", "none") or (value.isdigit() and int(value) < 2**53):
            return value
        raise forms.ValidationError(_("Choose a person from the list."), code="invalid")

    def _date_in_range(self, name: str) -> dt.date | None:
        # Dates the database could not take once a day is added to them.
        value = self.cleaned_data.get(name)
        if value is not None and not dt.date(1900, 1, 1) <= value <= dt.date(9998, 12, 31):
            raise forms.ValidationError(_("Enter a valid date."), code="invalid")
        return value

    def clean_created_from(self) -> dt.date | None:
        return self._date_in_range("created_from")

    def clean_created_to(self) -> dt.date | None:
        return self._date_in_range("created_to")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", _("The end of the range is before its start."))
        after = data.get("after") or ""
        if after and not cursor_fits(after, data.get("sort") or "deadline"):
            self.add_error(
                "after",
                forms.ValidationError(
                    _("This page cursor is not valid here; start again from the first page."),
                    code="invalid",
                ),
            )
        return data


@dataclass
class Page:
    cases: list[Case]
    next_after: str  # "" on the last page
    sort: str


def _encode(value: Any, pk: int) -> str:
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = json.dumps([value, pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> tuple[Any, int] | None:
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, TypeError):
        return None
    if not isinstance(pk, int):
        return None
    return value, pk


def cursor_fits(after: str, sort: str) -> bool:
    """The cursor is one this sort made: a datetime for the time sorts, a rank for priority."""
    decoded = _decode(after)
    if decoded is None:
        return False
    value, pk = decoded
    if isinstance(pk, bool) or not 0 <= pk < 2**53:
        return False
    if sort == "priority":
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 100
    if not isinstance(value, str):
        return False
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return moment.tzinfo is not None


def _after(cases: Any, field: str, ascending: bool, cursor: tuple[Any, int] | None) -> Any:
    """The cases after the keyset `cursor` (sort value, id) in the page's order."""
    if cursor is None:
        return cases
    value, pk = cursor
    op, bound = ("gt", "gte") if ascending else ("lt", "lte")
    # The bound alone lets the database walk the sort index from the cursor on; the rest
    # breaks ties on the id.
    return cases.filter(
        Q(**{f"{field}__{bound}": value})
        & (Q(**{f"{field}__{op}": value}) | Q(**{f"pk__{op}": pk}))
    )


def filtered(user: User, data: dict[str, Any], *, exact: bool = True) -> Any:
    """The cases `user` may see that match the form's cleaned data. With `exact` False, free
    text keeps the text index's candidates unchecked (page() checks the rows it shows)."""
    cases = visible_cases(user)
    now = timezone.now()
    view = data.get("view") or "mine"
    if view == "mine":
        cases = cases.filter(assignee=user).exclude(status=Status.CLOSED)
    elif view == "team_unassigned":
        cases = cases.filter(assignee__isnull=True, team__in=team_ids(user)).exclude(
            status=Status.CLOSED
        )
    elif view == "waiting_us":
        cases = cases.filter(status__in=[Status.NOT_STARTED, Status.PENDING_AGENT])
    elif view == "waiting_customer":
        cases = cases.filter(status=Status.PENDING_CUSTOMER)
    elif view == "overdue":
        cases = cases.exclude(status=Status.CLOSED).filter(deadline__lt=now)
    elif view == "closed":
        cases = cases.filter(status=Status.CLOSED)
    if data.get("reference"):
        cases = cases.filter(reference__istartswith=data["reference"].strip())
    if email := (data.get("email") or "").strip():
        cases = cases.filter(customer__email_index=email_index(email))
    if name := (data.get("name") or "").strip():
        cases = cases.filter(names_contain(name, path="customer__name_words"))
    if data.get("status"):
        cases = cases.filter(status__in=data["status"])
    if data.get("category"):
        cases = cases.filter(category=data["category"])
    if data.get("kind"):
        cases = cases.filter(kind=data["kind"])
    if data.get("priority"):
        cases = cases.filter(priority=data["priority"])
    assignee = data.get("assignee") or ""
    if assignee == "me":
        cases = cases.filter(assignee=user)
    elif assignee == "none":
        cases = cases.filter(assignee__isnull=True)
    elif assignee:
        cases = cases.filter(assignee_id=int(assignee))
    if data.get("team"):
        cases = cases.filter(team=data["team"])
    if data.get("waiting_days") is not None:
        since = now - dt.timedelta(days=data["waiting_days"])
        cases = cases.exclude(status=Status.CLOSED).filter(last_customer_message_at__lte=since)
    alert = data.get("alert")
    if alert:
        local_today = timezone.localdate()
        end_of_today = timezone.make_aware(
            dt.datetime.combine(local_today + dt.timedelta(days=1), dt.time(0))
        )
        cases = cases.exclude(status=Status.CLOSED)
        if alert == "overdue":
            cases = cases.filter(deadline__lt=now)
        elif alert == "due_today":
            cases = cases.filter(deadline__gte=now, deadline__lt=end_of_today)
        else:
            cases = cases.filter(deadline__gte=end_of_today)
    if data.get("created_from"):
        start = timezone.make_aware(dt.datetime.combine(data["created_from"], dt.time(0)))
        cases = cases.filter(created_at__gte=start)
    if data.get("created_to"):
        end = timezone.make_aware(
            dt.datetime.combine(data["created_to"] + dt.timedelta(days=1), dt.time(0))
        )
        cases = cases.filter(created_at__lt=end)
    if text := (data.get("q") or "").strip():
        find = search.matching_case_ids if exact else search.candidate_case_ids
        cases = cases.filter(pk__in=find(text, among=cases))
    return cases


# sort name -> (field or annotation, ascending?)
_ORDER = {
    "deadline": ("deadline", True),
    "priority": ("priority_rank", False),
    "age": ("created_at", True),
    "activity": ("last_activity_at", False),
}


def page(user: User, data: dict[str, Any], size: int = PAGE_SIZE) -> Page:
    sort = data.get("sort") or "deadline"
    field, ascending = _ORDER[sort]
    text = (data.get("q") or "").strip()
    # Free text: the index's candidates, each checked as the page needs it (search.containing),
    # so a common word costs the rows shown, not every case that has it.
    cases = filtered(user, data, exact=False)
    if field == "priority_rank":
        cases = cases.annotate(priority_rank=PRIORITY_RANK)
    cursor = _decode(data.get("after") or "")
    if cursor is not None:
        value, pk = cursor
        if field != "priority_rank" and value is not None:
            value = dt.datetime.fromisoformat(value)
        cursor = (value, pk)
    order = [field, "pk"] if ascending else [f"-{field}", "-pk"]
    related = ("customer", "category", "assignee", "team__calendar", "jurisdiction")
    rows: list[Case] = []
    while True:
        batch = list(
            _after(cases, field, ascending, cursor)
            .select_related(*related)
            .order_by(*order)[: size + 1]
        )
        shown = search.containing(text, batch) if text else {row.pk for row in batch}
        rows += [row for row in batch if row.pk in shown]
        if len(rows) > size or len(batch) <= size:
            break
        cursor = (getattr(batch[-1], field), batch[-1].pk)
    more = len(rows) > size
    rows = rows[:size]
    next_after = _encode(getattr(rows[-1], field), rows[-1].pk) if more and rows else ""
    return Page(cases=rows, next_after=next_after, sort=sort)
