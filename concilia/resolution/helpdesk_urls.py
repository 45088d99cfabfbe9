from django.urls import path

from concilia.resolution import helpdesk_views

app_name = "decisions"

urlpatterns = [
    path("<str:reference>/override", helpdesk_views.override, name="override"),
]
