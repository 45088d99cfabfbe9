"""The accountability page of the helpdesk's privacy menu: the record of processing activities
and the impact assessment draft to download (Spanish or English, Markdown or PDF), and the
reports of the last retention runs. For the data-protection officer and administrators."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from concilia.privacy import documents
from concilia.privacy.models import DOCUMENTS_PERMISSION, RetentionRules, RetentionRun
from concilia.privacy.retention import report_lines
from concilia.privacy.views import dpo_view

RUNS_SHOWN = 20
CONTENT_TYPES = {"md": "text/markdown; charset=utf-8", "pdf": "application/pdf"}


@require_GET
@dpo_view(DOCUMENTS_PERMISSION)
def accountability(request: HttpRequest) -> HttpResponse:
    runs = []
    if request.user.has_perm("privacy.view_retentionrun"):
        runs = [(run, report_lines(run.report)) for run in RetentionRun.objects.all()[:RUNS_SHOWN]]
    return render(
        request,
        "privacy/accountability.html",
        {
            "documents": [
                (documents.RECORD, _("Record of processing activities (GDPR article 30)")),
                (documents.ASSESSMENT, _("Data-protection impact assessment, draft (article 35)")),
            ],
            "runs": runs,
            "rules": RetentionRules.current(),
        },
    )


@require_GET
@dpo_view(DOCUMENTS_PERMISSION)
def document(request: HttpRequest, kind: str, language: str, format: str) -> HttpResponse:
    if kind not in documents.KINDS or format not in documents.FORMATS:
        raise Http404
    if language not in ("es", "en"):
        raise Http404
    built = documents.build(kind, language=language)
    if format == "pdf":
        body: bytes | str = documents.as_pdf(built)
    else:
        body = documents.as_markdown(built)
    response = HttpResponse(body, content_type=CONTENT_TYPES[format])
    response["Content-Disposition"] = f'attachment; filename="{built.file_name}.{format}"'
    return response
