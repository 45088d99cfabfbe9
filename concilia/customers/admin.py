from django.contrib import admin

from concilia.core.memo import forget_all
from concilia.customers.models import Consent, Customer, PrivacyNotice


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "phone", "language", "created_at")
    search_fields = ("name", "email", "phone")


@admin.register(PrivacyNotice)
class PrivacyNoticeAdmin(admin.ModelAdmin):
    list_display = ("version", "published_at")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_all()  # this process sees the change at once, the others within seconds


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ("customer", "notice", "accepted_at", "channel")
    readonly_fields = ("customer", "notice", "accepted_at", "channel")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
