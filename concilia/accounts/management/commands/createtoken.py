"""Issue an API token for a staff user, or rotate one, and print the new token once."""

from django.core.management.base import BaseCommand, CommandError

from concilia.accounts.models import (
    DEFAULT_SCOPES,
    ApiToken,
    Scope,
    TokenRevoked,
    UnknownScope,
    User,
    checked_scopes,
)


class Command(BaseCommand):
    help = (
        "Issue an API token for a staff user, or rotate one with --rotate PREFIX "
        "(printed once; only its digest is stored)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?")
        parser.add_argument("--name", default="integration")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            metavar="SCOPE",
            help=(
                f"Repeat for several: {', '.join(Scope.values)}. "
                f"Default: {' '.join(DEFAULT_SCOPES)}."
            ),
        )
        parser.add_argument(
            "--rotate",
            metavar="PREFIX",
            help="Replace the active token with this prefix by a new one with the same scopes.",
        )
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=None,
            help="With --rotate: minutes the old token keeps working "
            "(default CONCILIA_TOKEN_ROTATION_GRACE_MINUTES).",
        )

    def handle(self, *args, username, name, scopes, rotate, grace_minutes, **options):
        if rotate:
            if username or scopes:
                raise CommandError("--rotate keeps the token's user and scopes: give only PREFIX.")
            self.stdout.write(self._rotate(rotate, grace_minutes))
            return
        if not username:
            raise CommandError("Name the staff user (or --rotate PREFIX).")
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist as exc:
            raise CommandError(f"No staff user named {username!r}") from exc
        try:
            granted = checked_scopes(scopes) if scopes is not None else list(DEFAULT_SCOPES)
        except UnknownScope as exc:
            raise CommandError(
                f"Unknown scope {exc.scope!r}; valid scopes: {', '.join(Scope.values)}"
            ) from exc
        _, raw = ApiToken.issue(user=user, name=name, scopes=granted)
        self.stdout.write(raw)

    def _rotate(self, prefix: str, grace_minutes: int | None) -> str:
        tokens = list(ApiToken.objects.active().filter(prefix=prefix)[:2])
        if len(tokens) != 1:
            raise CommandError(
                f"No active token with prefix {prefix!r}"
                if not tokens
                else f"Several active tokens share prefix {prefix!r}; rotate it in the admin."
            )
        try:
            _, raw = tokens[0].rotate(grace_minutes=grace_minutes)
        except TokenRevoked as exc:
            raise CommandError(f"Token {prefix!r} is revoked; issue a new one.") from exc
        return raw
