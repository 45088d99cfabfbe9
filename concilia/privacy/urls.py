"""The data-protection officer's pages, mounted under /helpdesk/privacy/."""

from django.urls import path

from concilia.privacy import document_views, request_views, views

app_name = "privacy"

urlpatterns = [
    path("audit/", views.audit_log, name="audit"),
    path("audit/export.<str:format>", views.audit_export, name="audit-export"),
    path("documents/", document_views.accountability, name="accountability"),
    path(
        "documents/<str:kind>.<str:language>.<str:format>",
        document_views.document,
        name="document",
    ),
    path("requests/", request_views.request_list, name="requests"),
    path("requests/new", request_views.request_new, name="request-new"),
    path("requests/<int:pk>/", request_views.request_detail, name="request"),
    path("requests/<int:pk>/export.zip", request_views.request_export, name="request-export"),
    path("requests/<int:pk>/<str:action>", request_views.request_action, name="request-action"),
]
