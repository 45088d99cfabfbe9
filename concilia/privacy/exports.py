"""The export a customer receives for an access request: one zip with `data.json` (every app's
part of their data, concilia.privacy.hooks.export_customer), the files (attachments, chat files,
their emails as received) and a short README in their language.

The JSON is UTF-8, indented, with dates in ISO 8601; `files` lists every file with its SHA-256,
so the person (or the system they take it to: GDPR article 20) can check each one.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

from django.core.files.storage import storages
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.core.personal_data import file_digest
from concilia.privacy import hooks
from concilia.privacy.models import DataSubjectRequest

FORMAT = "concilia-personal-data"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class BuiltExport:
    content: bytes
    files: int  # files included (missing ones aside)


def build(request: DataSubjectRequest) -> BuiltExport:
    """The zip of the request's customer's data, as of now."""
    customer = request.customer
    if customer is None:
        raise ValueError("An export needs the request's customer")
    export = hooks.export_customer(customer)
    storage = storages["attachments"]
    manifest = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in export.files:
            try:
                with storage.open(item.name, "rb") as handle:
                    content = handle.read()
            except (FileNotFoundError, OSError):
                manifest.append({"path": item.path, "missing": True})
                continue
            archive.writestr(item.path, content)
            manifest.append(
                {"path": item.path, "sha256": file_digest(content), "bytes": len(content)}
            )
        document = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "generated_at": timezone.now().isoformat(),
            "request": str(request.public_id),
            **export.data,
            "files": manifest,
        }
        archive.writestr(
            "data.json", json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False)
        )
        with translation.override(request.language):
            archive.writestr("README.txt", _readme())
    return BuiltExport(buffer.getvalue(), sum(1 for entry in manifest if not entry.get("missing")))


def _readme() -> str:
    return (
        "\n\n".join(
            [
                _("A copy of your personal data"),
                _(
                    "data.json holds everything we keep about you, in a format any program can read "
                    "(JSON, UTF-8): your contact data and consents, your cases with their messages, "
                    "the decisions about them and why, your chats with our assistant, the emails you "
                    "sent us, your requests about your data, and who accessed your data and when."
                ),
                _(
                    "The other folders hold the files: those you attached to your cases or sent in "
                    "the chat, and your emails as we received them. data.json lists each one with "
                    "its SHA-256 fingerprint."
                ),
            ]
        )
        + "\n"
    )
