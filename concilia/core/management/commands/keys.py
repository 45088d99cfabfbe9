"""`concilia keys status|rotate|reencrypt|retire|rotate-index`: the encryption keys
(docs/encryption.md), what each one encrypted, a new key, everything written again with it, old
keys removed; a new blind index key with every index computed again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from tqdm import tqdm

from concilia.core import crypto, rekeying


class Command(BaseCommand):
    help = "Show, rotate and retire the keys that encrypt personal data and attachments."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(
            dest="action", required=True, metavar="status|rotate|reencrypt|retire|rotate-index"
        )
        commands.add_parser("status", help="the keys, and how many values and files each wrote")
        rotate = commands.add_parser(
            "rotate", help="put a new key first in the key file and re-encrypt in the background"
        )
        rotate.add_argument(
            "--now", action="store_true", help="re-encrypt here and now instead of in a job"
        )
        again = commands.add_parser(
            "reencrypt", help="write everything again with the current key (a background job)"
        )
        again.add_argument("--now", action="store_true", help="here and now instead of in a job")
        commands.add_parser(
            "retire", help="remove from the key file the old keys that nothing uses any more"
        )
        index = commands.add_parser(
            "rotate-index",
            help="a new blind index key, every index computed again in the background, then the "
            "old key removed",
        )
        index.add_argument("--now", action="store_true", help="here and now instead of in a job")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"_{action.replace('-', '_')}")(**options)

    def _status(self, **options: Any) -> None:
        ring = crypto.keyring()
        self.stdout.write(_("Keys from: %(source)s") % {"source": ring.source})
        for key_id in ring.ids:
            mark = _("encrypts") if key_id == ring.current else _("decrypts only")
            self.stdout.write(f"  {key_id}  {mark}")
        index_ids = crypto.index_key_ids()
        self.stdout.write(_("Blind index keys: %(ids)s") % {"ids": ", ".join(index_ids)})
        if len(index_ids) > 1:
            self.stdout.write(
                _("An index key rotation is under way: look-ups accept either key until it ends.")
            )
        use = rekeying.key_use()
        for label, counts in [*use.columns.items(), *use.files.items()]:
            shown = ", ".join(f"{key}: {n}" for key, n in sorted(counts.items())) or "-"
            self.stdout.write(f"{label}: {shown}")
        unknown = set(use.total()) - {*ring.ids, rekeying.PLAIN}
        if unknown:
            self.stderr.write(
                _("Written with keys this deployment does not have: %(ids)s")
                % {"ids": ", ".join(sorted(unknown))}
            )
        waiting = use.not_current()
        if waiting:
            self.stdout.write(
                _(
                    "%(count)s values and files still use an older key or none: run "
                    "`concilia keys reencrypt`."
                )
                % {"count": waiting}
            )
        else:
            self.stdout.write(_("Everything uses the current key."))

    def _rotate(self, *, now: bool, **options: Any) -> None:
        try:
            key_id = rekeying.add_key_to_file()
        except rekeying.KeysInSettings:
            keys = ",".join([crypto.new_key(), "<the keys you have now>"])
            raise CommandError(
                _(
                    "The keys come from CONCILIA_ENCRYPTION_KEYS, which only you can change. Put a "
                    "new key first, keep the old ones after it: CONCILIA_ENCRYPTION_KEYS=%(keys)s ; "
                    "restart every process with it, then run `concilia keys reencrypt`."
                )
                % {"keys": keys}
            ) from None
        self.stdout.write(
            _(
                "Key %(id)s added first to %(file)s: it encrypts from now on (every process on "
                "this machine reads the file again within seconds). Back the file up now."
            )
            % {"id": key_id, "file": crypto.key_file()}
        )
        self._reencrypt(now=now)

    def _reencrypt(self, *, now: bool, **options: Any) -> None:
        if not now:
            rekeying.queue_reencryption()
            self.stdout.write(
                _(
                    "Re-encryption queued: a worker writes everything again with key %(id)s. "
                    "`concilia keys status` shows what is left."
                )
                % {"id": crypto.keyring().current}
            )
            return
        with tqdm(desc=_("Re-encrypting"), unit=_(" values"), disable=None) as bar:
            rekeying.reencrypt(progress=lambda what, count: bar.update(count))
        rekeying.reencryption_done()
        self.stdout.write(_("Everything uses key %(id)s.") % {"id": crypto.keyring().current})

    def _retire(self, **options: Any) -> None:
        try:
            retired = rekeying.retire_unused_keys()
        except rekeying.KeysInSettings:
            raise CommandError(
                _(
                    "The keys come from CONCILIA_ENCRYPTION_KEYS: remove old keys there once "
                    "`concilia keys status` shows nothing uses them."
                )
            ) from None
        if retired:
            self.stdout.write(_("Removed keys: %(ids)s") % {"ids": ", ".join(retired)})
        else:
            self.stdout.write(_("Every key in the file is still in use; nothing removed."))

    def _rotate_index(self, *, now: bool, **options: Any) -> None:
        try:
            key_id = rekeying.add_index_key_to_file()
        except rekeying.IndexKeyInSettings:
            raise CommandError(
                _(
                    "The blind index key comes from CONCILIA_BLIND_INDEX_KEY, which only you can "
                    "change: remove it from the environment to let Concilia keep its index keys in "
                    "its key folder, or change it and run `concilia search reindex` and the "
                    "index key rotation (documented in docs/encryption.md) during a maintenance "
                    "window."
                )
            ) from None
        self.stdout.write(
            _(
                "Blind index key %(id)s added first to %(file)s: it writes from now on; look-ups "
                "accept the old key until every index is computed again. Back the file up now."
            )
            % {"id": key_id, "file": crypto.index_key_file()}
        )
        if not now:
            rekeying.queue_index_rotation()
            self.stdout.write(
                _(
                    "Index rotation queued: a worker computes every blind index again, then "
                    "removes the old key. `concilia keys status` shows when it is done."
                )
            )
            return
        with tqdm(desc=_("Computing indexes"), unit=_(" rows"), disable=None) as bar:
            rekeying.recompute_indexes(progress=lambda what, count: bar.update(count))
        retired = rekeying.finish_index_rotation()
        self.stdout.write(
            _("Every blind index uses key %(id)s; removed: %(old)s.")
            % {"id": crypto.index_key_ids()[0], "old": ", ".join(retired) or "-"}
        )
