from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "concilia.cases"
    label = "cases"
    verbose_name = _("Cases")

    def ready(self) -> None:
        # The NLU sits below cases: it reads closed cases as training examples through this source.
        from concilia.cases.queries import closed_case_examples
        from concilia.nlu.sources import register_example_source

        register_example_source("closed_cases", closed_case_examples)
        # An index key rotation (core, below cases) recomputes the cases' text index too.
        from concilia.cases.search import reindex_batch
        from concilia.core.rekeying import register_index

        register_index("cases.textgram", reindex_batch)
        # Assignment remembers each team's workers for a few seconds: forget them on a change.
        from django.contrib.auth.models import Group
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from concilia.accounts.models import User
        from concilia.cases.assignment import forget_workers

        post_save.connect(forget_workers, sender=User, dispatch_uid="cases.workers.user")
        post_delete.connect(forget_workers, sender=User, dispatch_uid="cases.workers.user_gone")
        for through in (User.groups.through, Group.permissions.through):
            m2m_changed.connect(
                forget_workers, sender=through, dispatch_uid=f"cases.workers.{through}"
            )
