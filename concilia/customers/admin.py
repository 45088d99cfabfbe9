from django.contrib import admin
from django.utils.translation import gettext_lazy

from concilia.core.memo import forget_all
from concilia.customers.models import Consent, Customer, PrivacyNotice
from concilia.customers.queries import customer_matches


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "phone", "language", "created_at")
    # Name, email and phone are encrypted: the database can neither sort nor search them.
    sortable_by = ("language", "created_at")
    search_fields = ("email",)  # shows the search box; get_search_results does the searching
    search_help_text = gettext_lazy("A whole email address, or whole words of the name.")

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(customer_matches(search_term)), False


@admin.register(PrivacyNotice)
class PrivacyNoticeAdmin(admin.ModelAdmin):
    list_display = ("version", "published_at")

    def get_readonly_fields(self, request, obj=None):
        # Customers accepted a published notice as it is: a change is a new version.
        if obj is not None and obj.is_published():
            return PrivacyNotice.FIXED_ONCE_PUBLISHED
        return ()

    def has_delete_permission(self, request, obj=None):
        return (obj is None or not obj.is_published()) and super().has_delete_permission(
            request, obj
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_all()  # this process sees the change at once, the others within seconds


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    # Consent records are evidence of accountability: kept, never deleted by hand.
    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    list_display = ("customer", "notice", "accepted_at", "channel")
    readonly_fields = ("customer", "notice", "accepted_at", "channel")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
