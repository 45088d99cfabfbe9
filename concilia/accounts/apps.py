from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "concilia.accounts"
    label = "accounts"
    verbose_name = _("Staff accounts")

    def ready(self) -> None:
        from concilia.accounts import audit_trail
        from concilia.accounts.checks import two_factor_required

        audit_trail.connect()  # audit entries for sign-in and for roles and permissions

        checks.register(two_factor_required, checks.Tags.security, deploy=True)
