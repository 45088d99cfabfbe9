"""A file storage that encrypts what it keeps: every attachment, chat upload, pending upload and
raw inbound email (the "attachments" storage of settings.STORAGES).

It wraps another storage, the local file system by default or S3 by settings:

    "attachments": {
        "BACKEND": "concilia.core.storage.EncryptedStorage",
        "OPTIONS": {
            "backend": "django.core.files.storage.FileSystemStorage",
            "options": {"location": "/var/lib/concilia/attachments", "base_url": None},
        },
    }

Content is encrypted on save (concilia.core.crypto.encrypt_bytes: the whole file at once, so a
file is held in memory while it is written or read; uploads are limited to a few megabytes) and
decrypted on open into an in-memory file, which is seekable: FileResponse's Content-Length and
`size` are those of the plain content. A file written before encryption (no header) opens as it
is; `concilia keys reencrypt` encrypts it. Names, folders and times are not encrypted: names are
random, chosen by Concilia, never the uploader's.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.utils.module_loading import import_string

from concilia.core import crypto

DEFAULT_BACKEND = "django.core.files.storage.FileSystemStorage"
_HEAD = 64  # bytes enough to read a file's header and key id


class EncryptedStorage(Storage):
    """Encrypts on save, decrypts on open; everything else is the wrapped storage's."""

    def __init__(self, backend: str = DEFAULT_BACKEND, options: dict[str, Any] | None = None):
        self.inner: Storage = import_string(backend)(**(options or {}))

    # -- content --------------------------------------------------------------------------

    def _open(self, name: str, mode: str = "rb") -> File:
        if "w" in mode or "a" in mode or "+" in mode:
            raise ValueError("Encrypted files are written with save(), never opened for writing.")
        plain = crypto.plain_bytes(self.raw_content(name))
        return File(io.BytesIO(plain), name=name)

    def _save(self, name: str, content: File) -> str:
        data = b"".join(content.chunks())  # chunks() starts from the beginning
        return self.inner._save(name, ContentFile(crypto.encrypt_bytes(data)))

    def raw_content(self, name: str) -> bytes:
        """The bytes as stored (encrypted, or plain when written before encryption)."""
        with self.inner.open(name, "rb") as handle:
            return handle.read()

    def stored_key_id(self, name: str) -> str | None:
        """The id of the key a file is encrypted with, or None for a plain file."""
        with self.inner.open(name, "rb") as handle:
            return crypto.stored_file_key_id(handle.read(_HEAD))

    def reencrypt(self, name: str) -> bool:
        """Write a file again with the current key (a plain file gets encrypted); false when it
        already was. The old content stays readable until the new one is complete."""
        raw = self.raw_content(name)
        if crypto.stored_file_key_id(raw[:_HEAD]) == crypto.keyring().current:
            return False
        self._replace(name, crypto.encrypt_bytes(crypto.plain_bytes(raw)))
        return True

    def _replace(self, name: str, data: bytes) -> None:
        try:
            path = self.inner.path(name)
        except NotImplementedError:
            path = None
        if path is None:  # object storage: a PUT replaces the object whole
            saved = self.inner._save(name, ContentFile(data))
            if saved != name:
                self.inner.delete(saved)
                raise RuntimeError(f"The storage would not overwrite {name} (it chose {saved}).")
            return
        temporary = f"{path}.{os.getpid()}.rekey"
        mode = os.stat(path).st_mode & 0o777
        with open(temporary, "wb") as handle:
            os.chmod(temporary, mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def walk(self, folder: str = "", *, after: str = "") -> Iterator[str]:
        """Every file's name in sorted order, from the first one after `after` (the rotation
        job resumes there without listing again the folders it finished)."""
        try:
            folders, files = self.inner.listdir(folder)
        except FileNotFoundError:
            return
        # A folder sorts as "name/", where every path inside it sorts: the order of full paths.
        entries = sorted(
            [(name, False) for name in files] + [(f"{name}/", True) for name in folders]
        )
        for entry, is_folder in entries:
            path = f"{folder}/{entry}" if folder else entry
            if not is_folder:
                if path > after:
                    yield path
            elif not after or path > after or after.startswith(path):
                yield from self.walk(path[:-1], after=after)

    def size(self, name: str) -> int:
        return len(crypto.plain_bytes(self.raw_content(name)))

    # -- the rest is the wrapped storage's -------------------------------------------------

    def delete(self, name: str) -> None:
        self.inner.delete(name)

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        return self.inner.listdir(path)

    def path(self, name: str) -> str:
        return self.inner.path(name)

    def url(self, name: str | None) -> str:
        return self.inner.url(name)

    def get_valid_name(self, name: str) -> str:
        return self.inner.get_valid_name(name)

    def get_available_name(self, name: str, max_length: int | None = None) -> str:
        return self.inner.get_available_name(name, max_length=max_length)

    def generate_filename(self, filename: str) -> str:
        return self.inner.generate_filename(filename)

    def get_accessed_time(self, name: str) -> Any:
        return self.inner.get_accessed_time(name)

    def get_created_time(self, name: str) -> Any:
        return self.inner.get_created_time(name)

    def get_modified_time(self, name: str) -> Any:
        return self.inner.get_modified_time(name)
