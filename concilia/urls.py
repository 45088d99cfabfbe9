"""URL map: public pages, tracking, the admin and the API."""

from django.contrib import admin
from django.urls import include, path

from concilia.api import api

urlpatterns = [
    path("", include("concilia.intake.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
