"""The accountability documents an administrator or the data-protection officer downloads: the
record of processing activities of the complaint process (GDPR article 30) and a draft of its
data-protection impact assessment (article 35), in Spanish or English, as Markdown or PDF.

Both are written from what Concilia knows rather than by hand: the personal fields every app
declares (`privacy.hooks.declared`), what each category asks and how long it keeps its cases,
the retention rules, the purposes and legal bases declared here, the recipients configured (mail
server, shop, CRM, webhooks, Telegram, a language model), the company's details (`Controller`)
and the security measures in force. What only the company can decide is marked as such.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Count
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from fpdf.enums import XPos, YPos

from concilia.cases.dossier import FONT, PdfDocument
from concilia.cases.models import DECLARED_FIELDS, Case, Category, FieldRule, LegalBasis
from concilia.core.personal_data import ANONYMISED, DELETED, KEPT, PersonalFields
from concilia.privacy import hooks
from concilia.privacy.models import Controller, RetentionRules

RECORD = "record"
ASSESSMENT = "assessment"
KINDS = (RECORD, ASSESSMENT)
FORMATS = ("md", "pdf")

TO_BE_COMPLETED = gettext_lazy("(to be completed by the company)")


@dataclass(frozen=True)
class Purpose:
    """What the complaint process uses personal data for, and on which legal basis."""

    name: str
    basis: str
    detail: str


def purposes() -> list[Purpose]:
    """The processing of the complaint process, purpose by purpose (GDPR article 6.1)."""
    return [
        Purpose(
            _("Receiving, handling and answering complaints, questions and requests"),
            _(
                "Legal obligation to handle consumer complaints (art. 6.1.c; in Spain Ley "
                "10/2025 of customer services); the customer's consent to the privacy notice on "
                "the form, the API and the chat; legitimate interest in answering an email."
            ),
            _("Identifying the customer, keeping the case and its thread, meeting the deadlines."),
        ),
        Purpose(
            _("Resolving the case: offers, refunds, replacements, mediation with third parties"),
            _("Performance of the contract of sale, or steps before it (art. 6.1.b)."),
            _("Looking up the order in the shop, carrying out the settlement agreed."),
        ),
        Purpose(
            _("The customer-service assistant (chat, Telegram)"),
            _("Consent to the privacy notice shown before the conversation (art. 6.1.a)."),
            _(
                "Understanding what the customer writes (language, category, frustration), "
                "collecting what the case needs, handing over to a person."
            ),
        ),
        Purpose(
            _("Answering regulators, arbitration and ADR bodies"),
            _("Legal obligation (art. 6.1.c) and the defence of claims (art. 17.3.e)."),
            _("The case dossier, kept for the retention period of each category."),
        ),
        Purpose(
            _("Accountability and security"),
            _("Legal obligation (arts. 5.2 and 32) and legitimate interest (art. 6.1.f)."),
            _(
                "The audit log of every access to and change of personal data; sign-in records; "
                "data-subject requests and their answers."
            ),
        ),
        Purpose(
            _("Service statistics"),
            _(
                "Legitimate interest (art. 6.1.f), on anonymised data: what stays of a case after "
                "its retention period identifies nobody."
            ),
            _("Volumes, response times and outcomes by category and channel."),
        ),
    ]


def purpose_rows() -> list[tuple[str, str]]:
    return [(p.name, f"{p.basis} {p.detail}") for p in purposes()]


@dataclass
class Section:
    """A heading with its paragraphs and its rows (label, value)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    rows: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Document:
    kind: str
    title: str
    intro: str
    sections: list[Section]
    language: str
    generated_at: dt.datetime

    @property
    def file_name(self) -> str:
        stem = {RECORD: _("record-of-processing"), ASSESSMENT: _("impact-assessment")}[self.kind]
        return f"{stem}-{self.generated_at:%Y-%m-%d}.{self.language}"


# What Concilia knows --------------------------------------------------------------------------


def _day_text(value: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(value), "DATE_FORMAT")


def _controller_rows(controller: Controller) -> list[tuple[str, str]]:
    missing = str(TO_BE_COMPLETED)
    return [
        (_("Controller"), controller.name or missing),
        (_("Tax id"), controller.tax_id or missing),
        (_("Address"), controller.address or missing),
        (
            _("Privacy contact"),
            " · ".join(filter(None, [controller.email, controller.phone])) or missing,
        ),
        (
            _("Data-protection officer"),
            " · ".join(filter(None, [controller.dpo_name, controller.dpo_email])) or missing,
        ),
        (_("Representative in the EU"), controller.representative or _("Not applicable")),
        (_("Supervisory authority"), controller.supervisory_authority or missing),
    ]


def _verbose(item: PersonalFields, name: str) -> str:
    try:
        return str(item.model_class._meta.get_field(name).verbose_name)
    except Exception:  # a declared name that is not a model field (a computed one)
        return name


def _erasure(item: PersonalFields) -> str:
    return {
        ANONYMISED: _("anonymised"),
        DELETED: _("deleted"),
        KEPT: _("kept"),
    }.get(item.erasure, item.erasure)


def personal_data_rows() -> list[tuple[str, str]]:
    """Each model's declared personal fields: which are encrypted, what erasure does."""
    rows = []
    for item in hooks.declared():
        model = item.model_class
        encrypted = set(item.encrypted)
        fields = ", ".join(
            _verbose(item, name) + (" " + _("(encrypted)") if name in encrypted else "")
            for name in item.fields
        )
        value = _("%(fields)s. On erasure or after retention: %(what)s.") % {
            "fields": fields,
            "what": _erasure(item),
        }
        if item.note:
            value += f" {item.note}"
        rows.append((str(model._meta.verbose_name).capitalize(), value))
    return rows


FIELD_LABELS = {
    "order_number": gettext_lazy("order number"),
    "purchase_date": gettext_lazy("purchase date"),
    "amount": gettext_lazy("amount"),
    "phone": gettext_lazy("phone"),
}


def _duration(days: int) -> str:
    if days % 365 == 0:
        years = days // 365
        return translation.ngettext("%(n)d year", "%(n)d years", years) % {"n": years}
    return translation.ngettext("%(n)d day", "%(n)d days", days) % {"n": days}


def category_rows() -> list[tuple[str, str]]:
    """What each category asks (data minimisation) and how long it keeps a closed case."""
    rows = []
    for category in Category.objects.order_by("position", "code"):
        asked = {rule: [] for rule in FieldRule.values}
        for name in DECLARED_FIELDS:
            asked[category.rule(name)].append(str(FIELD_LABELS[name]))
        parts = [_("name and email, the description of the problem")]
        if asked[FieldRule.REQUIRED]:
            parts.append(_("required: %(fields)s") % {"fields": ", ".join(asked["required"])})
        if asked[FieldRule.OPTIONAL]:
            parts.append(_("optional: %(fields)s") % {"fields": ", ".join(asked["optional"])})
        if asked[FieldRule.HIDDEN]:
            parts.append(_("never asked: %(fields)s") % {"fields": ", ".join(asked["hidden"])})
        value = (
            "; ".join(parts)
            + ". "
            + _("Kept %(period)s after closing, then anonymised.")
            % {"period": _duration(category.retention_days)}
        )
        if not category.active:
            value += " " + _("(Not in use.)")
        rows.append((category.name, value))
    return rows


def retention_rows() -> list[tuple[str, str]]:
    rules = RetentionRules.current()
    return [
        *category_rows(),
        (
            _("Chat conversations without a case"),
            _("Deleted %(period)s after their last message.")
            % {"period": _duration(rules.conversation_days)},
        ),
        (
            _("Original emails"),
            _("Deleted %(period)s after they arrived (what they added to a case stays with it).")
            % {"period": _duration(rules.inbound_email_days)},
        ),
        (
            _("Files of forms never sent"),
            translation.ngettext(
                "Deleted after %(n)d hour.",
                "Deleted after %(n)d hours.",
                rules.pending_upload_hours,
            )
            % {"n": rules.pending_upload_hours},
        ),
        (
            _("Failed background jobs"),
            _("Deleted %(period)s after their last failure.")
            % {"period": _duration(rules.dead_job_days)},
        ),
        (
            _("Customers"),
            _("Erased once every case of theirs has been anonymised, unless a legal hold applies."),
        ),
        (
            _("Audit log"),
            _(
                "Kept: it names personal fields and ids, never their values, and is the proof "
                "of every access, change and erasure."
            ),
        ),
    ]


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _connector(path: str, where: str) -> str:
    """A connector as people read it: its class and the host it talks to."""
    return path.rsplit(".", 1)[-1] + (f" ({_host(where)})" if where else "")


def _configured(path: str, *defaults: str) -> bool:
    return bool(path) and path not in defaults


def recipients() -> list[tuple[str, str]]:
    """Who receives personal data from Concilia, as this installation is configured."""
    from concilia.integrations.mail.models import Mailbox
    from concilia.integrations.telegram.models import TelegramBot
    from concilia.integrations.webhooks.models import Endpoint

    rows = [
        (
            _("Company staff"),
            _(
                "Agents, supervisors, administrators and the data-protection officer, each with "
                "the least role they need; every access is recorded in the audit log."
            ),
        )
    ]
    if "smtp" in settings.EMAIL_BACKEND:
        rows.append(
            (
                _("Email provider (processor)"),
                _("Outgoing email through %(host)s: the customer's address, name and answers.")
                % {"host": settings.EMAIL_HOST},
            )
        )
    for mailbox in Mailbox.objects.filter(active=True).exclude(host=""):
        rows.append(
            (
                _("Mailbox provider (processor)"),
                _("Incoming email read from %(host)s (%(address)s).")
                % {"host": mailbox.host, "address": mailbox.address},
            )
        )
    shop = settings.ORDER_LOOKUP
    if _configured(shop, "concilia.integrations.commerce.demo.DemoShop"):
        where = settings.WOOCOMMERCE_URL or settings.SHOP_REST.get("base_url", "")
        rows.append(
            (
                _("The shop (order system)"),
                _("%(connector)s: order number and customer's email, to find the order.")
                % {"connector": _connector(shop, where)},
            )
        )
    directory = settings.CUSTOMER_DIRECTORY
    if _configured(directory, "concilia.core.ports.NoCustomerDirectory"):
        where = settings.HUBSPOT_URL if "hubspot" in directory.lower() else ""
        where = where or settings.CRM_REST.get("base_url", "")
        rows.append(
            (
                _("CRM (processor)"),
                _("%(connector)s: the customer's contact data%(push)s.")
                % {
                    "connector": _connector(directory, where),
                    "push": _(" and summaries of their cases") if settings.CRM_PUSH else "",
                },
            )
        )
    for endpoint in Endpoint.objects.filter(active=True).order_by("pk"):
        rows.append(
            (
                _("Webhook receiver"),
                _(
                    "%(host)s: events with the case's reference, category and status, no "
                    "personal data."
                )
                % {"host": _host(endpoint.url)},
            )
        )
    if TelegramBot.objects.filter(active=True).exists():
        rows.append(
            (
                _("Telegram (messaging channel)"),
                _("Messages and files customers exchange with the company's bot."),
            )
        )
    if settings.NLU_ENGINE == "llm" and settings.LLM_BASE_URL:
        rows.append(
            (
                _("Language model service (processor)"),
                _("%(host)s: the text of customers' chat messages, to understand them.")
                % {"host": _host(settings.LLM_BASE_URL)},
            )
        )
    rows.append(
        (
            _("Third parties in mediation"),
            _(
                "A carrier, seller or supplier a supervisor invites to a case sees what it "
                "needs of that case."
            ),
        )
    )
    rows.append(
        (
            _("Regulators, ADR and arbitration bodies, courts"),
            _("The case dossier, when they ask for it or the customer takes the case to them."),
        )
    )
    return rows


def transfers() -> list[str]:
    """Transfers outside the European Economic Area: the company's statement, and the
    services configured here that usually imply one."""
    stated = Controller.current().transfers.strip()
    lines = [stated or _("The company has stated none.")]
    if settings.CUSTOMER_DIRECTORY.lower().find("hubspot") >= 0:
        lines.append(
            _(
                "HubSpot, Inc. (United States): check its EU-US Data Privacy Framework certification."
            )
        )
    from concilia.integrations.telegram.models import TelegramBot

    if TelegramBot.objects.filter(active=True).exists():
        lines.append(
            _("Telegram is run from outside the EEA: the customer chooses that channel themselves.")
        )
    if settings.NLU_ENGINE == "llm" and settings.LLM_BASE_URL:
        lines.append(
            _("Check where the language model service at %(host)s processes the text.")
            % {"host": _host(settings.LLM_BASE_URL)}
        )
    return lines


def security_rows() -> list[tuple[str, str]]:
    """The technical measures in force (GDPR article 32), as this installation is set."""
    two_factor = {
        "staff": _("required of every staff member"),
        "administrators": _("required of administrators, optional for the others"),
    }.get(settings.TWO_FACTOR_REQUIRED, _("optional"))
    return [
        (
            _("Encryption at rest"),
            _(
                "Customers' name, email and phone and every stored file (attachments, chat "
                "and form uploads, original emails) are encrypted with authenticated encryption "
                "(Fernet: AES-128 and HMAC-SHA256); the keys are kept outside the database and "
                "rotated with `concilia keys` (docs/encryption.md)."
            ),
        ),
        (
            _("Audit log"),
            _(
                "Every access to and change of personal data and every decision: who, what, "
                "when and from where, append-only and hash-chained, checked by `concilia audit "
                "verify` (docs/audit.md)."
            ),
        ),
        (
            _("Staff sign-in"),
            _(
                "Argon2id password hashing, lock-out after repeated failures, two-factor sign-in "
                "(%(two_factor)s), staff signed out after inactivity."
            )
            % {"two_factor": two_factor},
        ),
        (
            _("Transport and browser"),
            _("HTTPS with HSTS, secure cookies, Content-Security-Policy, CSRF protection.")
            if settings.PRODUCTION
            else _(
                "Not in production mode (CONCILIA_ENV): HTTPS, HSTS and secure cookies are off "
                "on this installation."
            ),
        ),
        (
            _("Access control"),
            _(
                "Roles (agent, supervisor, administrator, data-protection officer); customers "
                "see only their own cases through one-time links; API tokens with scopes."
            ),
        ),
        (
            _("Uploaded files"),
            _(
                "Checked by content, limited in size, images re-encoded without their metadata "
                "(GPS location), stored outside the web root."
            ),
        ),
        (
            _("Data minimisation and retention"),
            _(
                "Each category asks only the fields it declares; what has expired is anonymised "
                "or deleted every day, with a report (`concilia retention run`)."
            ),
        ),
        (
            _("Rate limits"),
            _("On the public form, the API, the chat and the tracking sign-in links."),
        ),
    ]


def legal_basis_rows() -> list[tuple[str, str]]:
    """How many cases rest on each legal basis, as recorded when they were opened."""
    counts = dict(
        Case.objects.filter(anonymised_at__isnull=True)
        .values_list("legal_basis")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return [
        (
            str(label),
            translation.ngettext("%(n)d case", "%(n)d cases", counts.get(value, 0))
            % {"n": counts.get(value, 0)},
        )
        for value, label in LegalBasis.choices
    ]


# The documents --------------------------------------------------------------------------------


def _record(controller: Controller) -> list[Section]:
    return [
        Section(_("1. Controller and data-protection officer"), rows=_controller_rows(controller)),
        Section(
            _("2. Purposes and legal bases"),
            rows=purpose_rows(),
        ),
        Section(
            _("3. Data subjects"),
            paragraphs=[
                _(
                    "Customers and consumers who complain, ask or write to the company by any "
                    "channel; people who chat with the assistant; third parties invited to a "
                    "mediation; the company's staff who handle the cases."
                )
            ],
        ),
        Section(
            _("4. Categories of personal data"),
            paragraphs=[
                _(
                    "As declared by each part of Concilia. Free texts and files may hold "
                    "whatever the customer chose to send, including special categories of data "
                    "(health) or data about others: staff are told not to ask for them."
                )
            ],
            rows=personal_data_rows(),
        ),
        Section(
            _("5. What each category of case asks (data minimisation)"),
            rows=category_rows(),
        ),
        Section(_("6. Recipients"), rows=recipients()),
        Section(_("7. Transfers outside the EEA"), paragraphs=transfers()),
        Section(_("8. Time limits for erasure"), rows=retention_rows()),
        Section(_("9. Security measures"), rows=security_rows()),
    ]


def _assessment(controller: Controller) -> list[Section]:
    missing = str(TO_BE_COMPLETED)
    return [
        Section(
            _("1. Description of the processing"),
            paragraphs=[
                _(
                    "Concilia receives the company's customer complaints by web form, API, chat, "
                    "Telegram and email, opens a case with a reference and a legal deadline, "
                    "lets staff and automatic policies resolve it, and keeps it for the period "
                    "of its category. Controller: %(controller)s."
                )
                % {"controller": controller.name or missing}
            ],
            rows=purpose_rows(),
        ),
        Section(
            _("2. Necessity and proportionality"),
            paragraphs=[
                _(
                    "Each category asks only the personal fields it declares; a field it does not "
                    "ask is never stored, whatever the channel sends. The legal basis of every "
                    "case is recorded with it, and every accepted privacy notice by its version "
                    "and time. Data-subject requests (access, rectification, erasure) are tracked "
                    "against their legal deadline."
                )
            ],
            rows=[*category_rows(), *legal_basis_rows()],
        ),
        Section(
            _("3. Risks to the rights and freedoms of the people concerned"),
            rows=[
                (
                    _("Unauthorised access or disclosure"),
                    _(
                        "Complaints may reveal purchases, addresses, health or disputes with "
                        "staff. Likelihood: limited with the measures below; severity: "
                        "significant."
                    ),
                ),
                (
                    _("Keeping data longer than needed"),
                    _("Mitigated by the daily retention job and its stored reports."),
                ),
                (
                    _("Automated decisions"),
                    _(
                        "Policies may offer a refund automatically; they never refuse a claim "
                        "without a person, every decision is recorded and a person can be asked "
                        "for at any time (art. 22)."
                    ),
                ),
                (
                    _("Data sent to other systems"),
                    _("See the recipients: each needs a data-processing agreement."),
                ),
                (_("Other risks identified by the company"), missing),
            ],
        ),
        Section(_("4. Measures to address the risks"), rows=security_rows()),
        Section(_("Recipients"), rows=recipients()),
        Section(_("Transfers outside the EEA"), paragraphs=transfers()),
        Section(_("Retention"), rows=retention_rows()),
        Section(
            _("5. Advice and sign-off"),
            rows=[
                (_("Advice of the data-protection officer"), missing),
                (_("Views of the people concerned or their representatives"), missing),
                (_("Residual risk accepted by"), missing),
                (_("Date and signature"), missing),
                (_("Next review"), missing),
            ],
        ),
    ]


def build(kind: str, *, language: str, now: dt.datetime | None = None) -> Document:
    """The document `kind` (RECORD or ASSESSMENT) in `language`, from the data as it is now."""
    now = now or timezone.now()
    with translation.override(language):
        controller = Controller.current()
        if kind == RECORD:
            title = _("Record of processing activities: complaint handling")
            intro = _(
                "GDPR article 30. Generated by Concilia on %(day)s from its configuration; "
                "review it and complete what is marked before adopting it."
            )
            sections = _record(controller)
        elif kind == ASSESSMENT:
            title = _("Data-protection impact assessment (draft): complaint handling")
            intro = _(
                "GDPR article 35. A draft generated by Concilia on %(day)s: the company assesses "
                "the risks, completes what is marked and signs it off with its data-protection "
                "officer's advice."
            )
            sections = _assessment(controller)
        else:
            raise ValueError(f"Unknown document {kind!r}")
        return Document(
            kind=kind,
            title=title,
            intro=intro % {"day": _day_text(now)},
            sections=sections,
            language=language,
            generated_at=now,
        )


def _escape(text: str) -> str:
    """Text safe in a Markdown table cell or paragraph (no table breaks, no raw HTML)."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", "<br>")


def _markdown_lines(document: Document) -> Iterator[str]:
    yield f"# {_escape(document.title)}"
    yield ""
    yield _escape(document.intro)
    for section in document.sections:
        yield ""
        yield f"## {_escape(section.title)}"
        for paragraph in section.paragraphs:
            yield ""
            yield _escape(paragraph)
        if section.rows:
            yield ""
            yield "| | |"
            yield "| --- | --- |"
            for label, value in section.rows:
                yield f"| **{_escape(label)}** | {_escape(value)} |"


def as_markdown(document: Document) -> str:
    return "\n".join(_markdown_lines(document)) + "\n"


def as_pdf(document: Document) -> bytes:
    with translation.override(document.language):
        pdf = PdfDocument(document.title.split(":")[0], _("Page"))
        pdf.set_title(document.title)
        pdf.set_creator("Concilia")
        pdf.set_lang(document.language)
        pdf.add_page()
        pdf.set_font(FONT, "B", 15)
        pdf.multi_cell(0, 8, document.title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.meta(document.intro)
        for section in document.sections:
            pdf.heading(section.title)
            for paragraph in section.paragraphs:
                pdf.paragraph(paragraph)
                pdf.ln(1)
            if section.rows:
                pdf.facts(section.rows)
        return bytes(pdf.output())
