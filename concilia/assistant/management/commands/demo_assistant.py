"""`concilia demo_assistant`: the assistant's demo knowledge base and troubleshooting guides."""

from django.core.management.base import BaseCommand

from concilia.assistant.demo import load_demo


class Command(BaseCommand):
    help = "Load the assistant's demo knowledge base and troubleshooting guides (once)."

    def handle(self, *args, **options):
        if load_demo():
            self.stdout.write("Assistant demo content loaded.")
