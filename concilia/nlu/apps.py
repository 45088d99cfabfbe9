from django.apps import AppConfig


class NluConfig(AppConfig):
    name = "concilia.nlu"
    label = "nlu"
    verbose_name = "Language understanding"
