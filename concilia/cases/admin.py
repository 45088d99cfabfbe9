from django.contrib import admin

from concilia.cases.models import Attachment, Case, CaseEvent, Category, Message
from concilia.core.memo import forget_all


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("code", "name_es", "name_en", "response_days", "position", "active")
    list_editable = ("response_days", "position", "active")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_all()  # this process sees the change at once, the others within seconds


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
    list_display = (
        "reference",
        "kind",
        "category",
        "status",
        "priority",
        "customer",
        "deadline",
        "created_at",
    )
    list_filter = ("status", "kind", "category", "channel", "priority")
    search_fields = ("reference", "customer__email", "customer__name", "subject", "order_number")
    list_select_related = ("category", "customer")
    readonly_fields = (
        "reference",
        "created_at",
        "updated_at",
        "privacy_consent",
        "channel",
        "customer",
    )
    inlines = [MessageInline, AttachmentInline, EventInline]

    def has_add_permission(self, request):  # cases are opened through the channels
        return False
