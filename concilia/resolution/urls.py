"""Collective complaints in the helpdesk, mounted under /helpdesk/collective/."""

from django.urls import path

from concilia.resolution import views

app_name = "collective"

urlpatterns = [
    path("", views.flag_list, name="list"),
    path("<int:pk>", views.flag_detail, name="detail"),
    path("<int:pk>/apply", views.flag_act, name="act"),
    path("<int:pk>/dismiss", views.flag_dismiss, name="dismiss"),
]
