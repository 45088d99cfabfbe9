"""`concilia demo_resolution`: the demo shop's policy, published."""

from django.core.management.base import BaseCommand

from concilia.resolution.demo import load_demo


class Command(BaseCommand):
    help = "Publish the demo shop's policy (once; nothing happens if any policy exists)."

    def handle(self, *args, **options):
        if load_demo():
            self.stdout.write("Demo policy published.")
