"""The customers' chat pages (mounted at /chat/)."""

from django.urls import path

from concilia.assistant import views

app_name = "assistant"

urlpatterns = [
    path("", views.chat_page, name="chat"),
    path("embed/", views.chat_embed, name="chat-embed"),
]
