from django.urls import path

from concilia.resolution import mediation_views

app_name = "mediation"

urlpatterns = [
    path("<str:reference>/", mediation_views.mediation_page, name="page"),
]
