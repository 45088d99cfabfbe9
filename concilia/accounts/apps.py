from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "concilia.accounts"
    label = "accounts"
    verbose_name = _("Staff accounts")

    def ready(self) -> None:
        from concilia.accounts.checks import two_factor_required

        checks.register(two_factor_required, checks.Tags.security, deploy=True)
