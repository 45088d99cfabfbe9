from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "concilia.feedback"
    label = "feedback"
    verbose_name = _("Feedback")

    def ready(self) -> None:
        # Lower apps never import this one: they call what is registered with them here.
        from concilia.assistant import knowledge
        from concilia.cases import templating
        from concilia.feedback import actions, queries
        from concilia.nlu.sources import register_example_source

        for model in queries.LABELLED_MODELS:
            register_example_source(f"reviews:{model}", queries.review_examples_for(model))
        knowledge.on_unanswered(actions.record_unanswered)
        templating.on_template_used(actions.record_template_use)
