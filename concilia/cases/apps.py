from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _restore_search_triggers(*, using: str, **kwargs: Any) -> None:
    from concilia.cases.search import restore_sqlite_triggers

    restore_sqlite_triggers(using)


class CasesConfig(AppConfig):
    name = "concilia.cases"
    label = "cases"
    verbose_name = _("Cases")

    def ready(self) -> None:
        # Schema upkeep, not business logic: SQLite table rebuilds drop the search triggers.
        post_migrate.connect(_restore_search_triggers, sender=self)
        # The NLU sits below cases: it reads closed cases as training examples through this source.
        from concilia.cases.queries import closed_case_examples
        from concilia.nlu.sources import register_example_source

        register_example_source("closed_cases", closed_case_examples)
