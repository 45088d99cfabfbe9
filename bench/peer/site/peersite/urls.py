"""django-helpdesk mounted at /helpdesk/, as its install guide does."""

from django.urls import include, path

urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]
