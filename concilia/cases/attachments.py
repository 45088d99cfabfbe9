"""Checking uploaded files by their content against an allow-list before they join a case;
images are re-encoded on the way, which strips their metadata (EXIF location and the like)."""

from __future__ import annotations

import hashlib
import io
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
from PIL import Image, ImageOps, ImageSequence, JpegImagePlugin

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
    if content_type in _REENCODED:
        content = without_metadata(name, content_type, content)
        size = len(content)
    return CheckedFile(
        name=name,
        content_type=content_type,
        size=size,
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
    )


# Images are stored re-encoded from their pixels (see without_metadata). HEIC is kept as sent:
# Pillow cannot read it without a HEIF plug-in, so its metadata stays (SECURITY.md).
_REENCODED = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
# What an image may keep: how it looks and moves, nothing about where, when or with what.
_KEPT_INFO = ("transparency", "background", "loop", "duration")
# The most pixels (all frames together) an image may have, Pillow's own limit (about 89
# megapixels): a decompression bomb is refused before it is decoded.
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


def without_metadata(name: str, content_type: str, content: bytes) -> bytes:
    """The image re-encoded with nothing but its pixels (and colour profile).

    EXIF (GPS location, time, camera, owner), XMP, IPTC, comments, text chunks and anything
    hidden after the image's end are dropped. The EXIF orientation is applied first, so that the
    photo stays upright. JPEGs keep their quantisation tables (the same quality and about the
    same size); WebP stays lossless if it was; animations keep their frames and timing.
    Raises ValidationError for an image that cannot be decoded or is too large in pixels.
    """
    try:
        with Image.open(io.BytesIO(content)) as image:
            frames = getattr(image, "n_frames", 1)
            if image.width * image.height * frames > MAX_IMAGE_PIXELS:
                raise ValidationError(
                    _(
                        "“%(name)s” is too large an image (%(megapixels)d megapixels). Please send a smaller one."
                    ),
                    code="too_many_pixels",
                    params={
                        "name": name,
                        "megapixels": image.width * image.height * frames // 10**6,
                    },
                )
            return _reencode(image, _REENCODED[content_type], content)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as error:
        raise ValidationError(
            _(
                "“%(name)s” could not be opened as an image; it may be damaged. Please send it again."
            ),
            code="unreadable",
            params={"name": name},
        ) from error


def _clean_frame(frame: Image.Image) -> Image.Image:
    clean = frame.copy()
    clean.info = {key: frame.info[key] for key in _KEPT_INFO if key in frame.info}
    return clean


def _reencode(image: Image.Image, image_format: str, original: bytes) -> bytes:
    icc_profile = image.info.get("icc_profile")
    options: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    if getattr(image, "n_frames", 1) > 1:
        frames = [_clean_frame(frame) for frame in ImageSequence.Iterator(image)]
        first = frames[0]
        options.update(
            save_all=True,
            append_images=frames[1:],
            duration=[frame.info.get("duration", 100) for frame in frames],
            loop=image.info.get("loop", 0),
        )
    else:
        first = _clean_frame(ImageOps.exif_transpose(image))
    if image_format == "JPEG":
        options.update(_jpeg_options(image))
        if first.mode not in ("L", "RGB", "CMYK"):
            first = first.convert("RGB")
    elif image_format == "WEBP":
        # A lossless WebP's image data is a VP8L chunk (after the 12-byte RIFF header).
        if b"VP8L" in original[:64]:
            options["lossless"] = True
        else:
            options["quality"] = 90
    output = io.BytesIO()
    first.save(output, format=image_format, **options)
    return output.getvalue()


def _jpeg_options(image: Image.Image) -> dict[str, Any]:
    tables = getattr(image, "quantization", None)
    if not tables:
        return {"quality": 90}
    options: dict[str, Any] = {"qtables": tables}
    sampling = JpegImagePlugin.get_sampling(image)
    if sampling != -1:
        options["subsampling"] = sampling
    return options


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
