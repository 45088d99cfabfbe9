from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from concilia.accounts.models import ApiToken, Role, Team, User
from concilia.core.admin import RememberedConfigAdmin


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, (None, {"fields": ("language", "away_until")}))
    list_display = (*UserAdmin.list_display, "role_label", "away_until")

    @admin.display(description=_("role"))
    def role_label(self, obj):
        role = obj.role
        return Role(role).label if role else ""


class TeamForm(forms.ModelForm):
    members = forms.ModelMultipleChoiceField(
        label=_("members"),
        queryset=User.objects.order_by("first_name", "username"),
        required=False,
        widget=FilteredSelectMultiple(_("members"), is_stacked=False),
    )

    class Meta:
        model = Team
        fields = ("code", "name_es", "name_en", "calendar", "email", "active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.group_id is not None:
            self.fields["members"].initial = self.instance.group.user_set.all()


@admin.register(Team)
class TeamAdmin(RememberedConfigAdmin):
    form = TeamForm
    list_display = ("code", "name_es", "name_en", "calendar", "active", "member_count")
    list_filter = ("active", "calendar")
    search_fields = ("code", "name_es", "name_en")
    list_select_related = ("calendar",)
    fieldsets = (
        (None, {"fields": ("code", "name_es", "name_en", "calendar", "email", "active")}),
        (
            _("members"),
            {
                "fields": ("members",),
                "description": _(
                    "Membership is the team's group: it can also be changed on each user."
                ),
            },
        ),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                active_members=Count(
                    "group__user", filter=Q(group__user__is_active=True), distinct=True
                )
            )
        )

    @admin.display(description=_("members"), ordering="active_members")
    def member_count(self, obj):
        return obj.active_members

    def save_related(self, request, form, formsets, change):
        # The team's group exists once the team is saved (Team.save creates it).
        form.instance.group.user_set.set(form.cleaned_data["members"])
        super().save_related(request, form, formsets, change)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "user", "created_at", "revoked_at")
    readonly_fields = ("prefix", "created_at")
    fields = ("name", "user", "prefix", "created_at", "revoked_at")

    def has_add_permission(self, request):  # tokens are issued with `concilia createtoken`
        return False
