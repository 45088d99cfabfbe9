from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from concilia.privacy.models import Controller, RetentionRules, RetentionRun
from concilia.privacy.retention import report_lines


class OneRowAdmin(admin.ModelAdmin):
    """Settings kept in one row: it can be added once and never deleted."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not self.model.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Controller)
class ControllerAdmin(OneRowAdmin):
    list_display = ("name", "email", "dpo_name", "dpo_email", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "tax_id", "address", "email", "phone")}),
        (_("Data-protection officer"), {"fields": ("dpo_name", "dpo_email")}),
        (_("Other"), {"fields": ("representative", "supervisory_authority", "transfers")}),
    )


@admin.register(RetentionRules)
class RetentionRulesAdmin(OneRowAdmin):
    list_display = (
        "conversation_days",
        "inbound_email_days",
        "dead_job_days",
        "pending_upload_hours",
        "updated_at",
    )


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    list_display = ("started_at", "trigger", "cases_anonymised", "records_deleted", "failed")
    list_filter = ("trigger",)
    fields = ("started_at", "finished_at", "trigger", "what_was_done")
    readonly_fields = fields

    @admin.display(description=_("what was done"))
    def what_was_done(self, run: RetentionRun) -> str:
        return format_html_join("", "<p>{}</p>", ((line,) for line in report_lines(run.report)))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
