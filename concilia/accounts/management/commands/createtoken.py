"""Issue an API token for a staff user and print it once."""

from django.core.management.base import BaseCommand, CommandError

from concilia.accounts.models import ApiToken, User


class Command(BaseCommand):
    help = "Issue an API token for a staff user (printed once; only its digest is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="integration")

    def handle(self, *args, username: str, name: str, **options):
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist as exc:
            raise CommandError(f"No staff user named {username!r}") from exc
        _, raw = ApiToken.issue(user=user, name=name)
        self.stdout.write(raw)
