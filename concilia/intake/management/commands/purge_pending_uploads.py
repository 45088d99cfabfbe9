"""`concilia purge_pending_uploads`: delete files kept for abandoned forms (run it daily)."""

from django.core.management.base import BaseCommand

from concilia.intake.tasks import purge_pending_uploads


class Command(BaseCommand):
    help = "Delete files kept for complaint forms abandoned for more than --hours (default 24)."

    def add_arguments(self, parser):
        parser.add_argument("--hours", type=int, default=24)

    def handle(self, *args, hours: int, **options):
        removed = purge_pending_uploads.call(older_than_hours=hours)
        self.stdout.write(f"Removed {removed} abandoned upload(s).")
