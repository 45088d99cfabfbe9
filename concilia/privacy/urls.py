"""The data-protection officer's pages, mounted under /helpdesk/privacy/."""

from django.urls import path

from concilia.privacy import document_views, views

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
]
