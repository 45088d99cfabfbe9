from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from concilia.accounts.models import ApiToken, User


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, (None, {"fields": ("language",)}))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "revoked_at")
    readonly_fields = ("prefix", "created_at")
    fields = ("name", "user", "prefix", "created_at", "revoked_at")

    def has_add_permission(self, request):  # tokens are issued with `concilia createtoken`
        return False
