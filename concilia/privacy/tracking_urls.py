"""The customer's "My data" pages, included by intake's URLs under /track/my-data/ (their names
are in intake's namespace, beside the other tracking pages: intake:my-data…)."""

from django.urls import path

from concilia.privacy import tracking_views

urlpatterns = [
    path("", tracking_views.my_data, name="my-data"),
    path("export/<uuid:public_id>", tracking_views.export_download, name="my-data-export"),
    path("confirm/<str:token>", tracking_views.confirm, name="my-data-confirm"),
]
