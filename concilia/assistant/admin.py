"""Admin for what administrators tune (hand-over rules, knowledge base, troubleshooting guides)
and for reading conversations."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from concilia.assistant.models import (
    ChatMessage,
    Conversation,
    Handover,
    HandoverRules,
    KnowledgeArticle,
    TechnicianVisit,
    TroubleshootingGuide,
)
from concilia.core.admin import RememberedConfigAdmin


@admin.register(HandoverRules)
class HandoverRulesAdmin(RememberedConfigAdmin):
    filter_horizontal = ["person_categories"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row: the rules in force.
        return not HandoverRules.objects.exists() and super().has_add_permission(request)


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(RememberedConfigAdmin):
    list_display = [
        "question_en",
        "question_es",
        "active",
        "shown_count",
        "helpful_count",
        "unhelpful_count",
    ]
    list_filter = ["active"]
    search_fields = ["question_es", "question_en", "phrasings"]
    readonly_fields = ["shown_count", "helpful_count", "unhelpful_count"]


@admin.register(TroubleshootingGuide)
class TroubleshootingGuideAdmin(admin.ModelAdmin):
    list_display = ["code", "product_en", "product_es", "position", "active"]
    list_editable = ["position", "active"]


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fields = ["seq", "author", "body", "rating", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    # Conversations are erased only through data-subject requests and retention.
    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    list_display = [
        "public_id",
        "channel",
        "language",
        "status",
        "category_code",
        "case",
        "csat_score",
        "created_at",
    ]
    list_filter = ["status", "channel", "language", "resolved_by_assistant"]
    readonly_fields = [f.name for f in Conversation._meta.fields]
    inlines = [ChatMessageInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Handover)
class HandoverAdmin(admin.ModelAdmin):
    list_display = ["case", "reason", "created_at", "expected_at", "taken_by", "taken_at"]
    list_filter = ["reason"]
    readonly_fields = [f.name for f in Handover._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(TechnicianVisit)
class TechnicianVisitAdmin(admin.ModelAdmin):
    list_display = ["case", "starts_at", "ends_at", "guide"]
    date_hierarchy = "starts_at"
