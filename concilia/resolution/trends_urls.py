"""Trends of similar complaints in the helpdesk, mounted under /helpdesk/trends/."""

from django.urls import path

from concilia.resolution import trends_views

app_name = "trends"

urlpatterns = [
    path("", trends_views.trend_list, name="list"),
    path("subscription", trends_views.trend_subscription, name="subscription"),
    path("<int:pk>/flag", trends_views.trend_flag, name="flag"),
]
