from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "concilia.integrations"
    label = "integrations"
    verbose_name = _("Integrations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the REST CRM's system check (its mapping, reported by `concilia check`).
        from concilia.integrations.crm import rest  # noqa: F401
