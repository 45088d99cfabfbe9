"""The administrators' side of webhooks: endpoints (the secret shown once, on creation and on
rotation), switching them on and off, and each endpoint's delivery log with redelivery."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from concilia.core.events import EventType
from concilia.integrations.webhooks import actions
from concilia.integrations.webhooks.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
)


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label=gettext_lazy("URL"), max_length=500, assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Events"),
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Endpoint
        fields = ("url", "description", "events", "active")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if url != self.initial.get("url"):  # an unchanged URL is kept, as in update_endpoint
            actions.check_url(url)
        return url


def _show_secret(request: HttpRequest, endpoint: Endpoint, secret: str) -> HttpResponse:
    return TemplateResponse(
        request,
        "admin/integrations/endpoint_secret.html",
        {
            **admin.site.each_context(request),
            "title": _("Signing secret"),
            "endpoint": endpoint,
            "secret": secret,
            "opts": Endpoint._meta,
            "docs": "docs/webhooks.md",
        },
    )


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ("__str__", "url", "subscribed", "active", "delivery_log", "created_at")
    list_filter = ("active",)
    search_fields = ("url", "description")
    readonly_fields = ("created_by", "created_at", "secret_rotated_at", "delivery_log")
    actions = ("activate", "deactivate", "rotate")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Endpoint]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                undelivered=Count(
                    "deliveries", filter=~Q(deliveries__status=DeliveryStatus.DELIVERED)
                )
            )
        )

    def get_fields(self, request, obj=None):
        fields = ["url", "description", "events", "active"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    @admin.display(description=gettext_lazy("Events"))
    def subscribed(self, endpoint: Endpoint) -> str:
        return ", ".join(endpoint.event_labels())

    @admin.display(description=gettext_lazy("Deliveries"))
    def delivery_log(self, endpoint: Endpoint) -> str:
        if endpoint.pk is None:
            return "—"
        url = (
            reverse("admin:integrations_delivery_changelist")
            + f"?endpoint__id__exact={endpoint.pk}"
        )
        undelivered = getattr(endpoint, "undelivered", None)
        label = (
            _("Delivery log")
            if not undelivered
            else _("Delivery log (%(count)s not delivered)") % {"count": undelivered}
        )
        return format_html('<a href="{}">{}</a>', url, label)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            actions.update_endpoint(
                endpoint=obj,
                url=data["url"],
                events=data["events"],
                description=data["description"],
                active=data["active"],
            )
        else:
            created = actions.create_endpoint(
                url=data["url"],
                events=data["events"],
                description=data["description"],
                actor=request.user,
            )
            if not data["active"]:
                actions.update_endpoint(
                    endpoint=created,
                    url=created.url,
                    events=created.events,
                    description=created.description,
                    active=False,
                )
            obj.pk = created.pk
            obj.secret = created.secret

    def response_add(self, request, obj, post_url_continue=None):
        # The one time the secret is shown: the receiver needs it to verify signatures.
        return _show_secret(request, obj, obj.secret)

    @admin.action(description=gettext_lazy("Activate the selected endpoints"))
    def activate(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        for endpoint in queryset:
            actions.update_endpoint(
                endpoint=endpoint,
                url=endpoint.url,
                events=endpoint.events,
                description=endpoint.description,
                active=True,
            )

    @admin.action(description=gettext_lazy("Deactivate the selected endpoints"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> None:
        for endpoint in queryset:
            actions.update_endpoint(
                endpoint=endpoint,
                url=endpoint.url,
                events=endpoint.events,
                description=endpoint.description,
                active=False,
            )

    @admin.action(description=gettext_lazy("Rotate the signing secret"))
    def rotate(self, request: HttpRequest, queryset: QuerySet[Endpoint]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(
                request, _("Choose one endpoint to rotate its secret."), messages.WARNING
            )
            return None
        endpoint = queryset.get()
        return _show_secret(request, endpoint, actions.rotate_secret(endpoint=endpoint))


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = ("number", "started_at", "status_code", "response_ms", "error")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event_kind",
        "subject",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_response_ms",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "endpoint")
    list_select_related = ("event", "endpoint")
    search_fields = ("subject", "event__event_id")
    readonly_fields = (
        "endpoint",
        "event_id_display",
        "event_kind",
        "subject",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_response_ms",
        "last_error",
        "created_at",
        "delivered_at",
    )
    fields = readonly_fields
    inlines = (DeliveryAttemptInline,)
    actions = ("redeliver",)

    def has_add_permission(self, request):
        return False

    @admin.display(description=gettext_lazy("Event"), ordering="event__kind")
    def event_kind(self, delivery: Delivery) -> str:
        return str(dict(EventType.choices).get(delivery.event.kind, delivery.event.kind))

    @admin.display(description=gettext_lazy("Event id"))
    def event_id_display(self, delivery: Delivery) -> str:
        return str(delivery.event.event_id)

    @admin.action(
        description=gettext_lazy("Deliver the selected events again"),
        permissions=("change",),
    )
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = actions.redeliver(deliveries=list(queryset))
        self.message_user(
            request,
            ngettext(
                "%(count)d delivery queued again.", "%(count)d deliveries queued again.", count
            )
            % {"count": count},
            messages.SUCCESS,
        )
