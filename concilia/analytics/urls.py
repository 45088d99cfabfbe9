from django.urls import path

from concilia.analytics import views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("mine/", views.mine, name="mine"),
    path("people/", views.people, name="people"),
    path("chart/<slug:chart>.csv", views.chart_csv, name="csv"),
    path("summary/", views.summary_preference, name="summary"),
]
