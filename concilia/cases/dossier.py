"""The case dossier a regulator or an ADR body asks for, as a PDF: the company, the case, the
jurisdiction's rule with its source, the dates against the deadlines, the customer, the
complaint, the thread (internal notes only in the internal version), the decisions (given by the
caller: `cases` knows nothing of the policies that made them), the attachments by name, size and
hash, and the case's history. In Spanish or English; Unicode text in an embedded TrueType font.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

import font_roboto
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from concilia.cases.jurisdictions import LegalRule, RuleKind
from concilia.cases.models import Case, EventKind

FONT = "Roboto"
_FONT_FILES = {"": "Roboto", "B": "RobotoBold", "I": "RobotoItalic"}
_LABEL_WIDTH = 52
_KEPT_CONTROLS = {"\n"}


@dataclass(frozen=True)
class DecisionLine:
    """One decision on the case, as the app that made it words it."""

    at: dt.datetime
    what: str
    detail: str = ""
    by: str = ""


def _clean(text: object) -> str:
    """Printable text: tabs as spaces, other control characters (NUL, escape…) dropped."""
    value = str(text if text is not None else "").replace("\r\n", "\n").replace("\t", "    ")
    return "".join(
        ch for ch in value if ch in _KEPT_CONTROLS or not unicodedata.category(ch).startswith("C")
    )


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


def _day(value: dt.date | None) -> str:
    return formats.date_format(value, "SHORT_DATE_FORMAT") if value else "—"


def _yes_no(value: bool | None) -> str:
    if value is None:
        return _("Not yet")
    return _("Yes") if value else _("No")


class PdfDocument(FPDF):
    """A4 pages with a reference (the case's, or a document's title) and page numbers at the
    foot of each, Roboto embedded; the privacy app's documents are printed with it too."""

    def __init__(self, reference: str, page_label: str) -> None:
        super().__init__(format="A4")
        self.reference = reference
        self.page_label = page_label
        for style, name in _FONT_FILES.items():
            self.add_font(FONT, style, font_roboto.font_files[name])
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(18, 18, 18)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.set_text_color(110)
        self.cell(0, 5, f"{self.reference} · {self.page_label} {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0)

    def heading(self, text: str) -> None:
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(3)
        self.set_font(FONT, "B", 12)
        self.multi_cell(0, 7, _clean(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(180)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(2)

    def facts(self, rows: Sequence[tuple[str, object]]) -> None:
        """Label and value side by side; the value wraps in its column."""
        for label, value in rows:
            if self.get_y() > self.h - 30:
                self.add_page()
            top, page = self.get_y(), self.page_no()
            self.set_font(FONT, "B", 9)
            self.multi_cell(_LABEL_WIDTH, 5, _clean(label), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            label_bottom = self.get_y()
            self.set_xy(self.l_margin + _LABEL_WIDTH, top)
            self.set_font(FONT, "", 9)
            self.multi_cell(
                0, 5, _clean(value) or "—", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
            if self.page_no() == page:
                self.set_y(max(self.get_y(), label_bottom))

    def paragraph(self, text: str, *, style: str = "", size: float = 9.5) -> None:
        self.set_font(FONT, style, size)
        self.multi_cell(0, 5, _clean(text) or "—", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def meta(self, text: str) -> None:
        self.set_text_color(90)
        self.paragraph(text, style="I", size=8.5)
        self.set_text_color(0)


def _company(case: Case) -> list[tuple[str, object]]:
    place = case.jurisdiction
    name = (place.trader_name if place else "") or parseaddr(settings.DEFAULT_FROM_EMAIL)[0]
    rows: list[tuple[str, object]] = [(_("Company"), name or "—")]
    if place and place.trader_id:
        rows.append((_("Tax ID"), place.trader_id))
    if place and place.trader_address:
        rows.append((_("Address"), place.trader_address))
    return rows


def _rule_rows(rule: LegalRule, language: str) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [(_("Rule"), rule.title(language))]
    if rule.text(language):
        rows.append((_("What it says"), rule.text(language)))
    if rule.days is not None:
        rows.append(
            (
                _("Deadline"),
                f"{rule.days} {rule.get_day_count_display().lower()} · "
                f"{rule.get_counted_from_display()}",
            )
        )
    rows.append((_("Source"), rule.source or "—"))
    if rule.note:
        rows.append((_("Note"), rule.note))
    return rows


def _within(done: dt.datetime | None, deadline: dt.datetime | None) -> bool | None:
    if deadline is None or done is None:
        return None
    return done <= deadline


def build(
    case: Case,
    *,
    language: str,
    internal: bool,
    decisions: Sequence[DecisionLine] = (),
    generated_by: Any = None,
    now: dt.datetime | None = None,
) -> bytes:
    """The dossier of one case as PDF bytes, in `language`; internal notes only if `internal`."""
    now = now or timezone.now()
    with translation.override(language):
        pdf = PdfDocument(case.reference, _("Page"))
        pdf.set_title(_("Case dossier %(reference)s") % {"reference": case.reference})
        pdf.set_creator("Concilia")
        pdf.set_lang(language)
        pdf.add_page()
        _cover(pdf, case, internal, generated_by, now)
        _jurisdiction(pdf, case, language)
        _dates(pdf, case)
        _customer_and_complaint(pdf, case)
        _thread(pdf, case, internal)
        _decisions(pdf, decisions)
        _attachments(pdf, case, internal)
        _history(pdf, case, internal)
        return bytes(pdf.output())


def _cover(pdf: PdfDocument, case: Case, internal: bool, by: Any, now: dt.datetime) -> None:
    pdf.set_font(FONT, "B", 16)
    pdf.multi_cell(
        0,
        9,
        _("Case dossier %(reference)s") % {"reference": case.reference},
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.meta(
        (
            _("Internal version: includes internal notes.")
            if internal
            else _("Version for the customer, a regulator or an ADR body: no internal notes.")
        )
        + " "
        + _("Generated %(when)s by %(who)s. Times in %(zone)s.")
        % {"when": _when(now), "who": str(by) if by else "Concilia", "zone": settings.TIME_ZONE}
    )
    pdf.heading(_("Company"))
    pdf.facts(_company(case))


def _jurisdiction(pdf: PdfDocument, case: Case, language: str) -> None:
    pdf.heading(_("Jurisdiction and legal rule"))
    place = case.jurisdiction
    if place is None:
        pdf.paragraph(_("No jurisdiction: no legal deadline applies to this case."))
        return
    pdf.facts([(_("Jurisdiction"), f"{place.name} ({place.code})")])
    rules = list(LegalRule.objects.filter(jurisdiction=place))
    for rule in sorted(rules, key=lambda r: (r.kind != RuleKind.RESPONSE, r.position, r.pk)):
        pdf.ln(1)
        pdf.facts(_rule_rows(rule, language))


def _dates(pdf: PdfDocument, case: Case) -> None:
    pdf.heading(_("Dates"))
    answered_by = case.closed_at
    pdf.facts(
        [
            (_("Received"), _when(case.created_at)),
            (_("First response"), _when(case.first_response_at)),
            (_("Internal deadline (SLA)"), _when(case.deadline)),
            (_("Legal deadline"), _when(case.legal_deadline)),
            (_("Resolved"), _when(case.resolved_at)),
            (_("Closed"), _when(case.closed_at)),
            (
                _("Closed within the legal deadline"),
                _yes_no(_within(answered_by, case.legal_deadline)),
            ),
            (
                _("Status"),
                f"{case.get_status_display()}"
                + (f" · {case.get_outcome_display()}" if case.outcome else ""),
            ),
        ]
    )


def _customer_and_complaint(pdf: PdfDocument, case: Case) -> None:
    customer = case.customer
    pdf.heading(_("Customer"))
    pdf.facts(
        [
            (_("Name"), customer.name),
            (_("Email"), customer.email),
            (_("Phone"), customer.phone or "—"),
            (_("Language"), case.get_language_display()),
        ]
    )
    pdf.heading(_("Complaint"))
    rows: list[tuple[str, object]] = [
        (_("Reference (tracking code)"), case.reference),
        (_("Kind"), case.get_kind_display()),
        (_("Category"), case.category.name),
        (_("Channel"), case.get_channel_display()),
        (_("Legal basis"), _legal_basis(case)),
        (_("Subject"), case.subject),
    ]
    if case.order_number:
        rows.append((_("Order number"), case.order_number))
    if case.purchase_date:
        rows.append((_("Purchase date"), _day(case.purchase_date)))
    if case.amount is not None:
        rows.append((_("Amount"), f"{formats.number_format(case.amount, 2)} {case.currency}"))
    pdf.facts(rows)
    pdf.ln(1)
    pdf.paragraph(case.description)
    if case.desired_resolution:
        pdf.ln(1)
        pdf.paragraph(_("Desired resolution"), style="B", size=9)
        pdf.paragraph(case.desired_resolution)


def _legal_basis(case: Case) -> str:
    """The basis the case was opened on, with the privacy notice's version and time if accepted."""
    text = str(case.get_legal_basis_display())
    consent = case.privacy_consent
    if consent is not None:
        text += " · " + _("privacy notice %(version)s accepted %(when)s") % {
            "version": consent.notice.version,
            "when": _when(consent.accepted_at),
        }
    return text


def _author(message: Any) -> str:
    if message.author_user is not None:
        return str(message.author_user)
    return str(message.get_author_kind_display())


def _thread(pdf: PdfDocument, case: Case, internal: bool) -> None:
    pdf.heading(_("Communication"))
    messages = case.messages.select_related("author_user")
    if not internal:
        messages = messages.filter(internal=False)
    shown = False
    for message in messages.order_by("created_at", "pk"):
        shown = True
        label = _("Internal note") + " · " if message.internal else ""
        pdf.meta(f"{label}{_author(message)} · {_when(message.created_at)}")
        pdf.paragraph(message.body)
        pdf.ln(2)
    if not shown:
        pdf.paragraph(_("No messages after the complaint."))


def _decisions(pdf: PdfDocument, decisions: Sequence[DecisionLine]) -> None:
    pdf.heading(_("Decisions"))
    if not decisions:
        pdf.paragraph(_("No decision was recorded."))
        return
    for line in decisions:
        pdf.meta(_when(line.at) + (f" · {line.by}" if line.by else ""))
        pdf.paragraph(line.what, style="B")
        if line.detail:
            pdf.paragraph(line.detail)
        pdf.ln(1)


def _attachments(pdf: PdfDocument, case: Case, internal: bool) -> None:
    pdf.heading(_("Attachments"))
    files = case.attachments.select_related("message")
    if not internal:
        files = files.exclude(message__internal=True)
    rows = [
        (
            attachment.original_name,
            f"{filesizeformat(attachment.size)} · {attachment.content_type} · "
            f"{_when(attachment.created_at)}\nSHA-256 {attachment.sha256}",
        )
        for attachment in files.order_by("created_at", "pk")
    ]
    if rows:
        pdf.facts(rows)
    else:
        pdf.paragraph(_("No attachments."))


def _history(pdf: PdfDocument, case: Case, internal: bool) -> None:
    pdf.heading(_("History"))
    events = case.events.select_related("actor_user").order_by("created_at", "pk")
    if not internal:
        events = events.exclude(kind=EventKind.NOTE_ADDED)
    pdf.facts(
        [
            (
                _when(event.created_at),
                event.get_kind_display()
                + (f" · {event.actor_user}" if event.actor_user_id else ""),
            )
            for event in events
        ]
    )
