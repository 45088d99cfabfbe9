"""URLs (filled in by the channel and helpdesk views)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
