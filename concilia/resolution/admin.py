"""The administrators' side of policies: versions written as YAML and checked before they are
stored, read-only once saved (a change is a new version), published, and simulated over past
cases before they go live."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from concilia.resolution import actions, simulation
from concilia.resolution.management.commands.policy import describe_problem
from concilia.resolution.models import CollectiveRule, Policy, PolicyVersion
from concilia.resolution.policy import PolicyInvalid

# Publishing and simulating are changes to how cases are decided.
MAY_PUBLISH = "resolution.change_policy"
PROGRESS_MARKER = "<!-- simulation -->"


def may_publish(request: HttpRequest) -> bool:
    return bool(
        request.user.is_active and request.user.is_staff and request.user.has_perm(MAY_PUBLISH)
    )


class PolicyVersionInline(admin.TabularInline):
    model = PolicyVersion
    extra = 0
    fields = ("number", "status", "note", "created_by", "created_at", "published_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True
    ordering = ("-number",)

    def has_add_permission(self, request, obj=None):  # a new version is written on its own page
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ("code", "name_es", "name_en", "position", "live_version")
    list_editable = ("position",)
    list_select_related = ("live_version",)
    search_fields = ("code", "name_es", "name_en")
    fields = ("code", "name_es", "name_en", "position", "live_version", "new_version")
    # The names come from the document's `name`; the live version changes by publishing.
    readonly_fields = ("code", "name_es", "name_en", "live_version", "new_version")
    inlines = [PolicyVersionInline]

    def has_add_permission(self, request):  # a policy begins with its first version
        return False

    def has_delete_permission(self, request, obj=None):  # decisions keep their versions
        return False

    @admin.display(description=gettext_lazy("new version"))
    def new_version(self, obj: Policy) -> str:
        latest = obj.versions.order_by("-number").first()
        url = reverse("admin:resolution_policyversion_add")
        return format_html(
            '<a href="{}?from={}">{}</a>',
            url,
            latest.pk if latest else "",
            _("Write a new version from the latest"),
        )


class PolicyVersionForm(forms.ModelForm):
    """A new version: the policy's code and its YAML, checked as it would be published."""

    code = forms.SlugField(
        label=gettext_lazy("policy code"),
        max_length=60,
        help_text=gettext_lazy("An existing policy's code for its next version, or a new code."),
    )
    publish = forms.BooleanField(
        label=gettext_lazy("publish now"),
        required=False,
        help_text=gettext_lazy("Make this version live as soon as it is saved."),
    )

    class Meta:
        model = PolicyVersion
        fields = ("code", "source", "note", "publish")
        widgets = {
            "source": forms.Textarea(
                attrs={"rows": 30, "cols": 100, "spellcheck": "false", "class": "vLargeTextField"}
            )
        }

    def clean(self):
        cleaned = super().clean()
        source = cleaned.get("source")
        if source:
            try:
                actions.check_policy(source)
            except PolicyInvalid as invalid:
                for problem in invalid.problems:
                    self.add_error("source", describe_problem(source, problem))
        return cleaned


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    form = PolicyVersionForm
    list_display = ("__str__", "status", "note", "created_by", "created_at", "published_at")
    list_filter = ("status", "policy")
    list_select_related = ("policy", "created_by")
    search_fields = ("policy__code", "note")
    actions = ["publish_selected"]
    change_form_template = "admin/resolution/policyversion/change_form.html"
    shown_fields = (
        "policy",
        "number",
        "status",
        "note",
        "policy_text",
        "created_by",
        "created_at",
        "published_by",
        "published_at",
    )

    # A saved version is never edited: its page is read-only, a change is a new version.

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_publish_permission(self, request) -> bool:
        return may_publish(request)

    def get_fields(self, request, obj=None):
        return self.shown_fields if obj is not None else ("code", "source", "note", "publish")

    def get_readonly_fields(self, request, obj=None):
        return self.shown_fields if obj is not None else ()

    @admin.display(description=gettext_lazy("policy (YAML)"))
    def policy_text(self, obj: PolicyVersion) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.source)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        earlier = request.GET.get("from")
        if earlier and earlier.isdigit():
            version = PolicyVersion.objects.select_related("policy").filter(pk=earlier).first()
            if version is not None:
                initial.update(
                    code=version.policy.code,
                    source=version.source,
                    note=_("From version %(number)s") % {"number": version.number},
                )
        return initial

    # Storing goes through the action (numbering, the policy's names, publishing).

    def save_form(self, request, form, change):
        if change:  # pragma: no cover - versions are read-only
            raise PermissionDenied
        data = form.cleaned_data
        if data["publish"] and not may_publish(request):
            raise PermissionDenied
        return actions.save_policy_version(
            code=data["code"],
            source=data["source"],
            author=request.user,
            note=data.get("note", ""),
            publish=data["publish"],
        )

    def save_model(self, request, obj, form, change):
        pass  # stored by save_form

    def save_related(self, request, form, formsets, change):
        pass  # no relations are edited here

    # Publishing and simulating ----------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:object_id>/publish/",
                view(self.publish_view),
                name="resolution_policyversion_publish",
            ),
            path(
                "<int:object_id>/simulate/",
                view(self.simulate_view),
                name="resolution_policyversion_simulate",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {
            "may_publish": may_publish(request),
            "copy_url": f"{reverse('admin:resolution_policyversion_add')}?from={object_id}",
        }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def publish(self, request, version: PolicyVersion) -> bool:
        try:
            actions.publish_version(version=version, actor=request.user)
        except PolicyInvalid as invalid:
            for problem in invalid.problems:
                self.message_user(
                    request, describe_problem(version.source, problem), messages.ERROR
                )
            return False
        self.message_user(
            request, _("%(version)s is live.") % {"version": version}, messages.SUCCESS
        )
        return True

    @admin.action(description=gettext_lazy("Publish the selected version"), permissions=["publish"])
    def publish_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(
                request, _("Select exactly one version to publish."), messages.WARNING
            )
            return
        self.publish(request, queryset.get())

    def publish_view(self, request, object_id: int) -> HttpResponse:
        if not may_publish(request):
            raise PermissionDenied
        return require_POST(self._publish)(request, object_id)

    def _publish(self, request, object_id: int) -> HttpResponse:
        version = get_object_or_404(PolicyVersion.objects.select_related("policy"), pk=object_id)
        self.publish(request, version)
        return HttpResponseRedirect(
            reverse("admin:resolution_policyversion_change", args=[version.pk])
        )

    def simulate_view(self, request, object_id: int) -> HttpResponse:
        """The form, then (once submitted) the report, streamed: a progress bar grows as the
        cases are read (one line per chunk; only the latest shows, with no script)."""
        if not may_publish(request):
            raise PermissionDenied
        version = get_object_or_404(PolicyVersion.objects.select_related("policy"), pk=object_id)
        form = SimulationForm(request.GET if "since" in request.GET else None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Simulate %(version)s") % {"version": version},
            "version": version,
            "form": form,
            "running": form.is_valid(),
            "marker": PROGRESS_MARKER,
        }
        template = "admin/resolution/policyversion/simulate.html"
        if not form.is_valid():
            return TemplateResponse(request, template, context)
        head, middle, tail = render_to_string(template, context, request).split(PROGRESS_MARKER)
        steps = simulation.run(
            version, since=form.cleaned_data["since"], until=form.cleaned_data["until"]
        )
        language = translation.get_language()

        def page() -> Iterator[str]:
            with translation.override(language):
                yield head
                report = None
                while report is None:
                    try:
                        done, total = next(steps)
                    except StopIteration as end:
                        report = end.value
                    else:
                        yield format_html(
                            '<div><progress max="{}" value="{}"></progress> {}</div>\n',
                            max(total, 1),
                            done,
                            _("%(done)s of %(total)s cases") % {"done": done, "total": total},
                        )
                yield middle
                yield render_to_string(
                    "admin/resolution/policyversion/_simulation_report.html",
                    {"report": report},
                    request,
                )
                yield tail

        return StreamingHttpResponse(page(), content_type="text/html; charset=utf-8")


class SimulationForm(forms.Form):
    since = forms.DateField(
        label=gettext_lazy("cases opened since"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        label=gettext_lazy("until (included)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["since"] = timezone.localdate() - dt.timedelta(days=90)

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", _("The last day is before the first."))
        return cleaned


@admin.register(CollectiveRule)
class CollectiveRuleAdmin(admin.ModelAdmin):
    """When many customers complaining about the same thing raise a collective complaint."""

    list_display = ("kind", "active", "min_customers", "window_hours")
    list_editable = ("active", "min_customers", "window_hours")
    filter_horizontal = ("categories",)
