from django.contrib.auth import views as auth_views
from django.urls import path

from concilia.accounts.forms import StaffAuthenticationForm
from concilia.cases import views

app_name = "helpdesk"

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="cases/helpdesk/login.html",
            authentication_form=StaffAuthenticationForm,  # locks out repeated failures
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="helpdesk:login"), name="logout"),
    path("", views.queue_view, name="queue"),
    path("bulk", views.bulk_action, name="bulk"),
    path("load", views.load_view, name="load"),
    path("notifications/", views.notifications, name="notifications"),
    path("cases/<str:reference>", views.case_detail, name="case"),
    path("cases/<str:reference>/<str:action>", views.case_action, name="case-action"),
]
