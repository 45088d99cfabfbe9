from django.contrib import admin
from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from concilia.cases import search
from concilia.cases.jurisdictions import LegalRule, Origin
from concilia.cases.models import (
    AssignmentRule,
    Attachment,
    Case,
    CaseEvent,
    Category,
    Jurisdiction,
    Message,
    ReplyTemplate,
)
from concilia.cases.templating import VARIABLES
from concilia.core.admin import RememberedConfigAdmin
from concilia.customers.queries import customer_matches


@admin.register(Category)
class CategoryAdmin(RememberedConfigAdmin):
    list_display = (
        "code",
        "name_es",
        "name_en",
        "first_response_days",
        "response_days",
        "reopen_days",
        "retention_days",
        "position",
        "active",
    )
    list_editable = (
        "first_response_days",
        "response_days",
        "reopen_days",
        "retention_days",
        "position",
        "active",
    )


@admin.register(ReplyTemplate)
class ReplyTemplateAdmin(RememberedConfigAdmin):
    list_display = ("code", "name_es", "name_en", "position", "active")
    list_editable = ("position", "active")
    list_filter = ("active",)
    search_fields = ("code", "name_es", "name_en", "body_es", "body_en")
    fieldsets = (
        (None, {"fields": ("code", "name_es", "name_en", "position", "active")}),
        (
            _("Text"),
            {
                "fields": ("body_es", "body_en"),
                "description": format_lazy(
                    "{} {}",
                    _("Variables filled in from the case:"),
                    ", ".join("{{ %s }}" % name for name in VARIABLES),  # noqa: UP031
                ),
            },
        ),
    )


@admin.register(AssignmentRule)
class AssignmentRuleAdmin(RememberedConfigAdmin):
    list_display = (
        "position",
        "name",
        "category",
        "kind",
        "language",
        "channel",
        "customer_email_domain",
        "team",
        "strategy",
        "active",
    )
    list_display_links = ("name",)
    list_editable = ("position", "active")
    list_filter = ("active", "team", "strategy", "category")
    list_select_related = ("category", "team")
    search_fields = ("name", "customer_email_domain")
    ordering = ("position", "pk")
    fieldsets = (
        (None, {"fields": ("name", "position", "active")}),
        (
            _("When the new case matches (empty: any)"),
            {"fields": ("category", "kind", "language", "channel", "customer_email_domain")},
        ),
        (_("Then"), {"fields": ("team", "strategy")}),
    )


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("created_at", "author_kind", "internal", "body")
    readonly_fields = ("created_at", "author_kind")


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    fields = ("original_name", "content_type", "size", "created_at")
    readonly_fields = fields
    can_delete = False


class EventInline(admin.TabularInline):
    model = CaseEvent
    extra = 0
    fields = ("created_at", "kind", "actor_kind", "actor_user", "data")
    readonly_fields = fields
    can_delete = False


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    # Cases are erased or anonymised only through data-subject requests and retention
    # (audited, search index and files included), never deleted here.
    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    list_display = (
        "reference",
        "kind",
        "category",
        "status",
        "priority",
        "customer",
        "team",
        "assignee",
        "deadline",
        "created_at",
    )
    list_filter = ("status", "kind", "category", "channel", "priority", "team")
    # The customer's email and name and the case's subject are encrypted: get_search_results
    # finds them by keyed hash (the subject through the text index, concilia.cases.search).
    search_fields = ("reference", "order_number")
    search_help_text = _(
        "A reference, words of the subject, an order number, the customer's whole email address "
        "or whole words of their name."
    )
    list_select_related = ("category", "customer", "team", "assignee")
    readonly_fields = (
        "reference",
        "created_at",
        "updated_at",
        "privacy_consent",
        "channel",
        "customer",
        # Ownership and SLA clocks change through the helpdesk's actions (events, notifications).
        "team",
        "assignee",
        "first_response_due",
        "sla_paused_at",
        "last_customer_message_at",
        "last_activity_at",
        "merged_into",
    )
    inlines = [MessageInline, AttachmentInline, EventInline]

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if term := search_term.strip():
            found |= queryset.filter(customer_matches(term, prefix="customer__"))
            found |= queryset.filter(pk__in=search.matching_case_ids(term, among=queryset))
        return found, may_have_duplicates

    def has_add_permission(self, request):  # cases are opened through the channels
        return False


class LegalRuleInline(admin.StackedInline):
    model = LegalRule
    extra = 0
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = (
        ("code", "kind", "position"),
        ("title_es", "title_en"),
        ("text_es", "text_en"),
        ("days", "day_count", "counted_from"),
        ("source_law", "source_article"),
        "source_url",
        "note",
        "origin",
    )
    readonly_fields = ("origin",)


@admin.register(Jurisdiction)
class JurisdictionAdmin(RememberedConfigAdmin):
    """Jurisdictions and their rules: shipped ones can be changed (then `concilia legal load
    --update` leaves them alone) and new ones added; whatever is saved here is the administrators'."""

    list_display = (
        "code",
        "name_es",
        "name_en",
        "holiday_country",
        "time_zone",
        "warn_days",
        "is_default",
        "active",
        "origin",
    )
    list_filter = ("active", "origin")
    search_fields = ("code", "name_es", "name_en")
    list_select_related = ("calendar",)
    inlines = (LegalRuleInline,)
    fieldsets = (
        (None, {"fields": ("code", "name_es", "name_en", "active", "is_default", "origin")}),
        (
            _("Working days"),
            {"fields": ("holiday_country", "holiday_subdivision", "calendar", "time_zone")},
        ),
        (_("Warnings"), {"fields": ("warn_days",)}),
        (
            _("The company there (printed on the dossier)"),
            {"fields": ("trader_name", "trader_id", "trader_address")},
        ),
        (None, {"fields": ("note",)}),
    )
    readonly_fields = ("origin",)

    def save_model(self, request, obj, form, change):
        obj.origin = Origin.ADMIN
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        for rule in formset.save(commit=False):
            rule.origin = Origin.ADMIN
            rule.save()
        for rule in formset.deleted_objects:
            rule.delete()
        formset.save_m2m()
