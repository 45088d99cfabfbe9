from django.contrib import admin

from concilia.customers.models import Consent, Customer, PrivacyNotice


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "phone", "language", "created_at")
    search_fields = ("name", "email", "phone")


@admin.register(PrivacyNotice)
class PrivacyNoticeAdmin(admin.ModelAdmin):
    list_display = ("version", "published_at")


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ("customer", "notice", "accepted_at", "channel")
    readonly_fields = ("customer", "notice", "accepted_at", "channel")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
