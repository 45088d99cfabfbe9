"""Staff account pages: the two-factor step of signing in, setting it up, managing it."""

from django.urls import path

from concilia.accounts import views

app_name = "accounts"

urlpatterns = [
    path("two-factor/", views.overview, name="two-factor"),
    path("two-factor/verify/", views.verify, name="two-factor-verify"),
    path("two-factor/setup/", views.setup, name="two-factor-setup"),
    path("two-factor/recovery-codes/", views.new_recovery_codes, name="two-factor-codes"),
    path("two-factor/turn-off/", views.turn_off, name="two-factor-off"),
    path("sign-out/", views.sign_out, name="sign-out"),
]
