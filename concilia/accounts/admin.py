from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from concilia.accounts.actions import disable_two_factor
from concilia.accounts.forms import StaffAdminAuthenticationForm
from concilia.accounts.models import (
    ApiToken,
    Role,
    Scope,
    Team,
    TokenRevoked,
    User,
    checked_scopes,
)
from concilia.core.admin import RememberedConfigAdmin

# The admin's sign-in locks out repeated failures like the helpdesk's.
admin.site.login_form = StaffAdminAuthenticationForm
# Devices are changed only through accounts.actions (which keeps User.two_factor_enabled true
# to them): by the person on their two-factor page, or reset here with the action below. Ours
# (AuthenticatorApp, RecoveryCodes) are not registered; django-otp's are no longer used.
for device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(device_model):
        admin.site.unregister(device_model)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    fieldsets = (
        *UserAdmin.fieldsets,
        (None, {"fields": ("language", "away_until", "two_factor_enabled")}),
    )
    readonly_fields = ("two_factor_enabled",)
    list_display = (*UserAdmin.list_display, "role_label", "away_until", "two_factor_enabled")
    list_filter = (*UserAdmin.list_filter, "two_factor_enabled")
    actions = ("reset_two_factor",)

    @admin.display(description=_("role"))
    def role_label(self, obj):
        role = obj.role
        return Role(role).label if role else ""

    @admin.action(
        description=_("Reset two-factor sign-in (lost phone): set it up again at next sign-in"),
        permissions=["change"],
    )
    def reset_two_factor(self, request, queryset):
        reset = 0
        for user in queryset.filter(two_factor_enabled=True):
            disable_two_factor(user=user, actor=request.user)
            reset += 1
        self.message_user(
            request,
            ngettext(
                "Two-factor sign-in reset for %(count)d person.",
                "Two-factor sign-in reset for %(count)d people.",
                reset,
            )
            % {"count": reset},
            messages.SUCCESS,
        )


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


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"),
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("What the token may do; the user's own permissions still apply."),
    )

    class Meta:
        model = ApiToken
        fields = ("name", "user", "scopes")

    def clean_scopes(self):
        return checked_scopes(self.cleaned_data["scopes"])


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Issue, rotate and revoke tokens; a new token's text is shown once, on its own page."""

    form = ApiTokenForm
    list_display = (
        "name",
        "prefix",
        "user",
        "scope_list",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    actions = ("rotate_tokens", "revoke_tokens")
    issued_template = "admin/accounts/apitoken/issued.html"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "user", "scopes")
        return (
            "name",
            "user",
            "scopes",
            "prefix",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at")

    @admin.display(description=_("scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes) or "—"

    def save_model(self, request, obj, form, change):
        if not change:
            request._issued_token = obj.set_secret()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        return self._issued_page(request, [(obj, request._issued_token)], rotated=False)

    def _issued_page(self, request, issued, *, rotated):
        response = TemplateResponse(
            request,
            self.issued_template,
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": _("New API token") if len(issued) == 1 else _("New API tokens"),
                "issued": issued,
                "rotated": rotated,
            },
        )
        response["Cache-Control"] = "no-store"  # the page holds secrets
        return response

    @admin.action(
        description=_("Rotate selected tokens (new token, same scopes)"), permissions=["change"]
    )
    def rotate_tokens(self, request, queryset):
        issued = []
        for token in queryset.select_related("user").order_by("pk"):
            try:
                new, raw = token.rotate()
            except TokenRevoked:
                self.message_user(
                    request,
                    _("%(token)s is revoked or expired and was not rotated.") % {"token": token},
                    messages.WARNING,
                )
                continue
            self.log_change(
                request, token, _("Rotated; replaced by %(prefix)s…") % {"prefix": new.prefix}
            )
            issued.append((new, raw))
        if not issued:
            return None
        return self._issued_page(request, issued, rotated=True)

    @admin.action(description=_("Revoke selected tokens"), permissions=["change"])
    def revoke_tokens(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()
            self.log_change(request, token, _("Revoked"))
            revoked += 1
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )
