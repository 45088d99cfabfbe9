"""URL map: public pages, tracking, the admin and the API."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from concilia import dossiers
from concilia.api import api
from concilia.core.metrics import metrics_view

urlpatterns = [
    path("", include("concilia.intake.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("chat/", include("concilia.assistant.urls")),
    path("parties/", include("concilia.resolution.party_urls")),
    path("helpdesk/chats/", include("concilia.assistant.helpdesk_urls")),
    path("helpdesk/decisions/", include("concilia.resolution.helpdesk_urls")),
    path("helpdesk/mediation/", include("concilia.resolution.mediation_urls")),
    path("helpdesk/collective/", include("concilia.resolution.urls")),
    path("helpdesk/trends/", include("concilia.resolution.trends_urls")),
    path("helpdesk/privacy/", include("concilia.privacy.urls")),
    path("helpdesk/analytics/", include("concilia.analytics.urls")),
    path("helpdesk/feedback/", include("concilia.feedback.urls")),
    path("helpdesk/dossier/<str:reference>", dossiers.download, name="case-dossier"),
    path("helpdesk/", include("concilia.cases.urls")),
    path("accounts/", include("concilia.accounts.urls")),
    path("admin/", admin.site.urls),
    # Prometheus (docs/operations.md): a bearer token, or loopback only when none is set.
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", api.urls),
    path("integrations/mail/", include("concilia.integrations.mail.urls")),
    path("integrations/telegram/", include("concilia.integrations.telegram.urls")),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin, the API docs).
    path("favicon.ico", RedirectView.as_view(url=static("concilia/favicon.svg"), permanent=True)),
]
