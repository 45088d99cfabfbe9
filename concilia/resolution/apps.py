from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ResolutionConfig(AppConfig):
    name = "concilia.resolution"
    verbose_name = _("Resolution")
    default_auto_field = "django.db.models.BigAutoField"
