"""The data-protection officer's audit log: the entries, filtered and a page at a time, the
chain's state, and the filtered entries exported as CSV or JSON (streamed, however many)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from concilia.core import audit
from concilia.core.models import AuditAction, AuditEntry
from concilia.privacy import queries
from concilia.privacy.forms import AuditFilterForm

VIEW_PERMISSION = "core.view_auditentry"
EXPORT_PERMISSION = "core.export_auditentry"

# Columns of the exports, in order: every field of an entry, so a copy can be checked by hash.
COLUMNS = (*audit.HASHED, "hash")


def dpo_view(
    permission: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Signed-in staff holding `permission` only (the data-protection officer's role gives
    both); others get 403, people not signed in go to the helpdesk's sign-in."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), "helpdesk:login")
            if not (request.user.is_active and request.user.has_perm(permission)):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _filters(request: HttpRequest) -> tuple[AuditFilterForm, dict[str, Any]]:
    """The form, and the filters that are valid (an invalid one is ignored and shown as such)."""
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return form, {k: v for k, v in form.cleaned_data.items() if k not in form.errors}
    return form, form.cleaned_data if form.is_bound else {}


def _described(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters as kept in the log: an email is personal data, so only that one was given."""
    return {
        name: "(given)" if name == "email" else value
        for name, value in filters.items()
        if value not in (None, "") and name != "before"
    }


def _customer(filters: dict[str, Any]) -> int | None:
    found = queries.customers_with_email(filters["email"]) if filters.get("email") else []
    return found[0] if found else None


@require_GET
@dpo_view(VIEW_PERMISSION)
def audit_log(request: HttpRequest) -> HttpResponse:
    form, filters = _filters(request)
    result = queries.page(filters)
    audit.record(
        AuditAction.LIST,
        target=AuditEntry,
        customer=_customer(filters),
        detail={"filters": _described(filters), "before": filters.get("before")},
    )
    params = request.GET.copy()
    params.pop("before", None)
    older = params.copy()
    older["before"] = str(result.next_before)
    return render(
        request,
        "privacy/audit_log.html",
        {
            "form": form,
            "entries": result.entries,
            "older_url": "?" + older.urlencode() if result.next_before else "",
            "newest_url": "?" + params.urlencode() if filters.get("before") else "",
            "query": params.urlencode(),
            "chain": audit.verify_since_last(),
            "may_export": request.user.has_perm(EXPORT_PERMISSION),
        },
    )


@require_GET
@dpo_view(EXPORT_PERMISSION)
def audit_export(request: HttpRequest, format: str) -> HttpResponse:
    if format not in ("csv", "json"):
        raise Http404
    form, filters = _filters(request)
    if form.errors:
        # Exporting with a filter dropped would hand over more than was asked for.
        problems = [
            f"{getattr(form.fields.get(name), 'label', name)}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        ]
        return HttpResponseBadRequest(
            _("Nothing was exported; correct the filters: %(problems)s")
            % {"problems": "; ".join(problems)},
            content_type="text/plain; charset=utf-8",
        )
    filters.pop("before", None)
    audit.record(
        AuditAction.EXPORT,
        target=AuditEntry,
        customer=_customer(filters),
        detail={"filters": _described(filters), "format": format},
    )
    entries = queries.matching_entries(filters).values(*COLUMNS).iterator(chunk_size=2000)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if format == "csv":
        response = StreamingHttpResponse(_csv(entries), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(_json(entries), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{format}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    at: dt.datetime = row["at"]
    return {**row, "at": at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}


class _Line:
    """A file for csv.writer that hands back what was written, for streaming row by row."""

    def write(self, text: str) -> str:
        return text


# A cell a spreadsheet would run as a formula (a user agent is anyone's to write).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    if isinstance(value, dict):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _csv(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(COLUMNS)  # the BOM tells spreadsheets it is UTF-8
    for row in rows:
        plain = _plain(row)
        yield writer.writerow([_cell(plain[name]) for name in COLUMNS])


def _json(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield "["
    separator = "\n"
    for row in rows:
        yield separator + json.dumps(_plain(row), ensure_ascii=False, sort_keys=True)
        separator = ",\n"
    yield "\n]\n"
