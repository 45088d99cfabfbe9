from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _restore_audit_triggers(*, using: str, **kwargs: Any) -> None:
    from concilia.core import audit_triggers

    audit_triggers.restore(using)


def audit_triggers_present(databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when a database lacks the triggers that keep the audit log append-only."""
    from concilia.core import audit_triggers

    return [
        checks.Warning(
            _("The audit log's triggers %(names)s are missing from database %(db)s.")
            % {"names": ", ".join(absent), "db": alias},
            hint=_(
                "The database no longer refuses edits of audit entries. Run `concilia migrate` "
                "to put them back, and `concilia audit verify` to check the log."
            ),
            id="core.W001",
        )
        for alias in databases or ()
        if (absent := audit_triggers.missing(alias))
    ]


class CoreConfig(AppConfig):
    name = "concilia.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        # Schema upkeep, not business logic: SQLite table rebuilds drop the audit triggers.
        post_migrate.connect(_restore_audit_triggers, sender=self)
        checks.register(audit_triggers_present, checks.Tags.database)
