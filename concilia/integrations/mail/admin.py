"""The administrators' side of the email channel: mailboxes (read now, the webhook URL, the
last error) and every inbound email with what became of it, its raw message and a retry."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from concilia.integrations.mail.actions import process_email
from concilia.integrations.mail.models import InboundEmail, Mailbox, Outcome, sender_index


class MailboxForm(forms.ModelForm):
    password = forms.CharField(
        label=gettext_lazy("password"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=gettext_lazy("Leave empty to keep the current password."),
    )

    class Meta:
        model = Mailbox
        fields = (
            "name",
            "slug",
            "address",
            "default_category",
            "active",
            "host",
            "port",
            "security",
            "username",
            "password",
            "folder",
        )

    def clean_password(self) -> str:
        return self.cleaned_data["password"] or (self.instance.password if self.instance.pk else "")


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxForm
    list_display = ("name", "address", "host", "active", "last_polled_at", "last_error")
    readonly_fields = ("webhook_url", "inbound_secret", "last_polled_at", "last_error", "last_uid")
    actions = ("read_now",)
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description=gettext_lazy("Inbound webhook URL"))
    def webhook_url(self, mailbox: Mailbox) -> str:
        if not mailbox.pk:
            return "-"
        return settings.BASE_URL + reverse("mail:inbound", args=[mailbox.slug])

    @admin.action(description=gettext_lazy("Read the selected mailboxes now"))
    def read_now(self, request: HttpRequest, queryset: QuerySet[Mailbox]) -> None:
        from concilia.integrations.mail.imap import read_mailbox

        for mailbox in queryset.exclude(host=""):
            try:
                result = read_mailbox(mailbox)
            except Exception as error:
                self.message_user(
                    request,
                    _("%(mailbox)s could not be read: %(error)s")
                    % {"mailbox": mailbox, "error": error},
                    messages.ERROR,
                )
                continue
            self.message_user(
                request,
                ngettext(
                    "%(mailbox)s: %(count)d new email.",
                    "%(mailbox)s: %(count)d new emails.",
                    result.read,
                )
                % {"mailbox": mailbox, "count": result.read},
            )


@admin.register(InboundEmail)
class InboundEmailAdmin(admin.ModelAdmin):
    # Every email that arrived is kept; retention and erasure remove them, audited.
    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    list_display = ("received_at", "mailbox", "from_address", "subject", "outcome", "case_link")
    list_filter = ("outcome", "mailbox")
    search_fields = ("header_id",)  # shows the search box; get_search_results does the searching
    search_help_text = gettext_lazy(
        "A whole sender address, a Message-ID or a case reference (the subject is encrypted)."
    )
    date_hierarchy = "received_at"
    actions = ("process_again",)
    fields = (
        "received_at",
        "mailbox",
        "from_address",
        "subject",
        "header_id",
        "size",
        "outcome",
        "detail",
        "case_link",
        "raw_link",
        "attempts",
        "processed_at",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        # The sender is encrypted: found whole, through its keyed hash.
        term = search_term.strip()
        if not term:
            return queryset, False
        found = Q(from_index=sender_index(term)) | Q(header_id=term) | Q(header_id=f"<{term}>")
        return queryset.filter(found | Q(case__reference__iexact=term)), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self):
        raw = self.admin_site.admin_view(self.raw_view)
        return [
            path("<int:pk>/raw/", raw, name="integrations_inboundemail_raw"),
            *super().get_urls(),
        ]

    @admin.display(description=gettext_lazy("case"))
    def case_link(self, email: InboundEmail) -> str:
        if email.case_id is None:
            return "-"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("helpdesk:case", args=[email.case.reference]),
            email.case.reference,
        )

    @admin.display(description=gettext_lazy("original message"))
    def raw_link(self, email: InboundEmail) -> str:
        if not email.raw:
            return "-"
        url = reverse("admin:integrations_inboundemail_raw", args=[email.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download (.eml)"))

    def raw_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise Http404
        email = get_object_or_404(InboundEmail, pk=pk)
        if not email.raw:
            raise Http404
        return FileResponse(
            email.raw.open("rb"),
            as_attachment=True,
            filename=f"email-{email.pk}.eml",
            content_type="message/rfc822",
        )

    @admin.action(description=gettext_lazy("Process the selected emails again"))
    def process_again(self, request: HttpRequest, queryset: QuerySet[InboundEmail]) -> None:
        done = 0
        for email in queryset.filter(outcome__in=(Outcome.FAILED, Outcome.RECEIVED)):
            done += process_email(email=email).outcome != Outcome.FAILED
        self.message_user(
            request,
            ngettext("%(count)d email processed.", "%(count)d emails processed.", done)
            % {"count": done},
        )
