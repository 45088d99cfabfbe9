from django.urls import path

from concilia.resolution import party_views

app_name = "parties"

urlpatterns = [
    path("<str:token>/", party_views.party_page, name="page"),
]
