from django.urls import path

from concilia.integrations.mail import views

app_name = "mail"

urlpatterns = [
    path("inbound/<slug:slug>/", views.inbound, name="inbound"),
]
