"""The Telegram bots' webhooks (mounted at /integrations/telegram/)."""

from django.urls import path

from concilia.integrations.telegram import views

app_name = "telegram"

urlpatterns = [
    path("<slug:code>/webhook", views.webhook, name="webhook"),
]
