"""Checking uploaded files by their content against an allow-list before they join a case."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

import filetype
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

# Content types we accept, with the file name endings that may carry them.
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("jpg", "jpeg", "jpe", "jfif"),
    "image/png": ("png",),
    "image/gif": ("gif",),
    "image/webp": ("webp",),
    "image/heic": ("heic", "heif"),
    "application/pdf": ("pdf",),
}

# Signatures of programs and scripts, named so the refusal can say what the file really is.
_EXECUTABLE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "Windows"),
    (b"\x7fELF", "Linux"),
    (b"\xcf\xfa\xed\xfe", "macOS"),
    (b"\xfe\xed\xfa\xcf", "macOS"),
    (b"\xca\xfe\xba\xbe", "macOS/Java"),
    (b"#!", "script"),
)
_HEAD_BYTES = 8192


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed the checks, ready to be stored."""

    name: str
    content_type: str
    size: int
    sha256: str
    content: bytes

    @property
    def extension(self) -> str:
        return ALLOWED_TYPES[self.content_type][0]


def stored_files(uploads: Iterable[Any]) -> list[CheckedFile]:
    """Files checked earlier and kept until their case exists (a form corrected, a chat): each
    has `file`, `original_name`, `content_type`, `size` and `sha256`."""
    files = []
    for upload in uploads:
        with upload.file.open("rb") as handle:
            content = handle.read()
        files.append(
            CheckedFile(
                name=upload.original_name,
                content_type=upload.content_type,
                size=upload.size,
                sha256=upload.sha256,
                content=content,
            )
        )
    return files


def clean_file_name(name: str) -> str:
    """The base name without directories or control characters, at most 255 characters."""
    base = os.path.basename((name or "").replace("\\", "/"))
    base = "".join(
        ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C"
    )
    base = base.strip().strip(".") or "file"
    stem, dot, ext = base.rpartition(".")
    if dot and len(base) > 255:
        return stem[: 254 - len(ext)] + "." + ext
    return base[:255]


def _allowed_list() -> str:
    return "JPEG, PNG, GIF, WebP, HEIC, PDF"


def check_file(name: str, content: bytes, size: int | None = None) -> CheckedFile:
    """Accept the file or raise a ValidationError saying why, in the user's language.

    `size` is the declared size when only the first bytes of a large upload were read.
    """
    name = clean_file_name(name)
    size = max(size or 0, len(content))
    limit = settings.CONCILIA_MAX_ATTACHMENT_BYTES
    if size == 0:
        raise ValidationError(_("“%(name)s” is empty."), code="empty", params={"name": name})
    if size > limit:
        raise ValidationError(
            _("“%(name)s” is %(size)s; files may be at most %(limit)s."),
            code="too_large",
            params={"name": name, "size": filesizeformat(size), "limit": filesizeformat(limit)},
        )
    head = content[:_HEAD_BYTES]
    for signature, platform in _EXECUTABLE_SIGNATURES:
        if head.startswith(signature):
            raise ValidationError(
                _(
                    "“%(name)s” is a program (%(platform)s executable), not a photo or a document. "
                    "Accepted files: %(allowed)s."
                ),
                code="executable",
                params={"name": name, "platform": platform, "allowed": _allowed_list()},
            )
    kind = filetype.guess(head)
    content_type = kind.mime if kind else None
    if content_type not in ALLOWED_TYPES:
        described = kind.extension.upper() if kind else _("unknown")
        raise ValidationError(
            _(
                "“%(name)s” is a file of type %(type)s, which we cannot accept. "
                "Accepted files: %(allowed)s."
            ),
            code="type_not_allowed",
            params={"name": name, "type": described, "allowed": _allowed_list()},
        )
    _stem, dot, ext = name.rpartition(".")
    ext = ext.lower() if dot else ""
    if not ext:
        name = f"{name}.{ALLOWED_TYPES[content_type][0]}"
    elif ext not in ALLOWED_TYPES[content_type]:
        raise ValidationError(
            _(
                "“%(name)s” is named as .%(ext)s but its content is %(type)s. "
                "Please send the original file."
            ),
            code="disguised",
            params={"name": name, "ext": ext, "type": ALLOWED_TYPES[content_type][0].upper()},
        )
    return CheckedFile(
        name=name,
        content_type=content_type,
        size=size,
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
    )


def read_upload(upload: IO[bytes], limit: int | None = None) -> bytes:
    """Read an upload, at most one byte past the limit (enough to know it is too large)."""
    cap = (limit or settings.CONCILIA_MAX_ATTACHMENT_BYTES) + 1
    upload.seek(0)
    return upload.read(cap)


def check_uploads(uploads: Iterable[object]) -> tuple[list[CheckedFile], list[ValidationError]]:
    """Check Django UploadedFiles; the good ones and one error per bad one."""
    accepted: list[CheckedFile] = []
    errors: list[ValidationError] = []
    for upload in uploads:
        try:
            content = read_upload(upload)  # type: ignore[arg-type]
            declared = getattr(upload, "size", None)
            accepted.append(check_file(getattr(upload, "name", ""), content, declared))
        except ValidationError as error:
            errors.append(error)
    return accepted, errors
