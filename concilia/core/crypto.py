"""Encryption at rest: the deployment's keys, authenticated encryption of text and bytes, and the
keyed hash (blind index) that lets an encrypted email still be looked up.

Keys (docs/encryption.md):

- Encryption: Fernet keys (AES-128-CBC with HMAC-SHA256, from the `cryptography` package), from
  settings.ENCRYPTION_KEYS (CONCILIA_ENCRYPTION_KEYS, comma-separated) or else one per line in
  HOME/keys/encryption.keys, created on first use with mode 0600. The first key encrypts; every
  key decrypts, so a value written before a rotation still opens.
- Blind index: one HMAC-SHA256 key of its own (never the bytes of an encryption key), from
  settings.BLIND_INDEX_KEY (CONCILIA_BLIND_INDEX_KEY) or else HOME/keys/blind_index.key.

Neither is ever kept in the database. A stored text value is "enc1:<key id>:<Fernet token>"; the
key id (a keyed hash of the key, not the key) says which key wrote it, so the rotation job and
`concilia keys status` find values still on an older key with plain SQL. A value without the
prefix is legacy plain text, recognised as such while a migration encrypts it. A stored file is
FILE_MAGIC, the key id, a newline, then the token's bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

PREFIX = "enc1:"
FILE_MAGIC = b"concilia-enc1:"
KEY_FILE = "encryption.keys"
INDEX_KEY_FILE = "blind_index.key"
# How often a process looks at the key file for a key added by `concilia keys rotate`.
RECHECK_SECONDS = 2.0
KEY_ID_LENGTH = 10  # hex digits: never a LIKE wildcard, the same in every database's collation


class DecryptionError(ValueError):
    """A stored value that does not open: changed since it was written, or written with a key
    this deployment does not have. Never silently ignored: the data is not what was stored."""


@dataclass(frozen=True)
class Keyring:
    """The encryption keys in force: `ids[0]` encrypts, every one decrypts."""

    ids: tuple[str, ...]
    fernets: dict[str, Fernet]
    source: str  # "settings" or the key file's path

    @property
    def current(self) -> str:
        return self.ids[0]

    def prefix(self) -> str:
        """What every value written with the current key starts with."""
        return f"{PREFIX}{self.current}:"

    def file_header(self) -> bytes:
        return FILE_MAGIC + self.current.encode() + b"\n"


def key_id(key: bytes | str) -> str:
    """A short public name for a key: a keyed hash of it, from which the key cannot be found."""
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, b"concilia key id", hashlib.sha256).hexdigest()[:KEY_ID_LENGTH]


def new_key() -> str:
    return Fernet.generate_key().decode()


def key_folder() -> Path:
    return Path(settings.HOME) / "keys"


def _write_aside(path: Path, content: str) -> Path:
    """`content` in a new file beside `path`, readable by its owner only, flushed to disk."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return temporary


def _create_secret_file(path: Path, content: str) -> None:
    """Create a secret file with its content in one step: a process that loses the race to
    create it keeps the winner's file."""
    temporary = _write_aside(path, content)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def key_file_text(keys: list[str]) -> str:
    return (
        "# Concilia's encryption keys (docs/encryption.md): the first encrypts, all decrypt.\n"
        "# Back this file up apart from the database: without it encrypted data is lost.\n"
        + "".join(f"{key}\n" for key in keys)
    )


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key file atomically (mode 0600): readers see the old list or the new one."""
    os.replace(_write_aside(path, key_file_text(keys)), path)


def read_key_file(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _configured_keys() -> list[str]:
    return [key.strip() for key in getattr(settings, "ENCRYPTION_KEYS", None) or [] if key.strip()]


def key_file() -> Path | None:
    """The key file in use, or None when the keys come from settings (the environment)."""
    return None if _configured_keys() else key_folder() / KEY_FILE


def _load_keyring() -> Keyring:
    configured = _configured_keys()
    if configured:
        keys, source = configured, "settings"
    else:
        path = key_folder() / KEY_FILE
        if not path.exists():
            _create_secret_file(path, key_file_text([new_key()]))
        keys, source = read_key_file(path), str(path)
    if not keys:
        raise ImproperlyConfigured(f"No encryption key in {source}.")
    fernets: dict[str, Fernet] = {}
    for key in keys:
        try:
            fernet = Fernet(key.encode())
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"An encryption key in {source} is not a Fernet key (32 url-safe base64 bytes)."
            ) from exc
        fernets.setdefault(key_id(key), fernet)
    return Keyring(
        ids=tuple(dict.fromkeys(key_id(key) for key in keys)), fernets=fernets, source=source
    )


class _Cache:
    """The keys as last read, looked at again when the key file changes (a rotation in another
    process) or a setting changes (tests)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forget()

    def forget(self) -> None:
        self.keyring: Keyring | None = None
        self.index_key: bytes | None = None
        self.stamp: float | None = None
        self.checked = 0.0

    def _file_stamp(self) -> float | None:
        path = key_file()
        try:
            return path.stat().st_mtime_ns if path is not None else None
        except FileNotFoundError:
            return None

    def current(self, *, recheck: bool = False) -> Keyring:
        now = time.monotonic()
        with self.lock:
            if self.keyring is not None and (recheck or now - self.checked > RECHECK_SECONDS):
                self.checked = now
                if self._file_stamp() != self.stamp:
                    self.keyring = None
            if self.keyring is None:
                self.keyring = _load_keyring()
                self.stamp = self._file_stamp()
                self.checked = now
            return self.keyring


_cache = _Cache()


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: object) -> None:
    if setting in ("ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "HOME"):
        _cache.forget()


def keyring(*, recheck: bool = False) -> Keyring:
    """The keys in force (the key file is read again when it changed)."""
    return _cache.current(recheck=recheck)


def forget_keys() -> None:
    """Read the keys again on next use (after this process changed the key file)."""
    _cache.forget()


# -- text ------------------------------------------------------------------------------------


def is_encrypted(value: str) -> bool:
    return value.startswith(PREFIX)


def stored_key_id(value: str) -> str | None:
    """The id of the key that wrote a stored value, or None for plain text."""
    if not is_encrypted(value):
        return None
    return value[len(PREFIX) :].partition(":")[0]


def encrypt_text(value: str) -> str:
    """`value` encrypted and authenticated with the current key, as stored text."""
    ring = keyring()
    token = ring.fernets[ring.current].encrypt(value.encode("utf-8"))
    return ring.prefix() + token.decode("ascii")


def _open_token(key: str, token: bytes, what: str) -> bytes:
    ring = keyring()
    if key not in ring.fernets:
        ring = keyring(recheck=True)  # a key added since: another process rotated
    fernet = ring.fernets.get(key)
    if fernet is None:
        raise DecryptionError(
            f"{what} was encrypted with key {key}, which this deployment does not have "
            f"(keys in force: {', '.join(ring.ids)}; source: {ring.source})."
        )
    try:
        return fernet.decrypt(token)
    except InvalidToken:
        raise DecryptionError(
            f"{what} does not open with key {key}: it was changed or damaged after it was written."
        ) from None


def decrypt_text(value: str) -> str:
    """The plain text of a value encrypt_text wrote; DecryptionError for anything else."""
    if not is_encrypted(value):
        raise DecryptionError("The value is not encrypted (no enc1: prefix).")
    key, sep, token = value[len(PREFIX) :].partition(":")
    if not sep:
        raise DecryptionError("The encrypted value has no key id.")
    # An authentic token holds what encrypt_text wrote: UTF-8.
    return _open_token(key, token.encode("utf-8"), "A stored value").decode("utf-8")


def reencrypt_text(value: str) -> str:
    """The value written again with the current key (plain text gets encrypted)."""
    return encrypt_text(decrypt_text(value) if is_encrypted(value) else value)


# -- bytes (files) ---------------------------------------------------------------------------


def encrypt_bytes(data: bytes) -> bytes:
    """`data` encrypted and authenticated with the current key, in the stored file format."""
    ring = keyring()
    token = ring.fernets[ring.current].encrypt(data)
    return ring.file_header() + base64.urlsafe_b64decode(token)


def is_encrypted_bytes(data: bytes) -> bool:
    return data.startswith(FILE_MAGIC)


def stored_file_key_id(head: bytes) -> str | None:
    """The id of the key that wrote a file, from its first bytes, or None for a plain file."""
    if not is_encrypted_bytes(head):
        return None
    line, newline, _rest = head[len(FILE_MAGIC) :].partition(b"\n")
    return line.decode("ascii", "replace") if newline else None


def decrypt_bytes(data: bytes) -> bytes:
    """The plain content of what encrypt_bytes wrote; DecryptionError for anything else."""
    if not is_encrypted_bytes(data):
        raise DecryptionError("The file is not encrypted.")
    line, newline, raw = data[len(FILE_MAGIC) :].partition(b"\n")
    if not newline:
        raise DecryptionError("The encrypted file has no key id.")
    return _open_token(line.decode("ascii", "replace"), base64.urlsafe_b64encode(raw), "A file")


def plain_bytes(data: bytes) -> bytes:
    """The content of a stored file, encrypted or (written before encryption) plain."""
    return decrypt_bytes(data) if is_encrypted_bytes(data) else data


# -- blind index -----------------------------------------------------------------------------


def _index_key() -> bytes:
    with _cache.lock:
        if _cache.index_key is not None:
            return _cache.index_key
    configured = getattr(settings, "BLIND_INDEX_KEY", "") or ""
    if configured:
        secret = configured
    else:
        path = key_folder() / INDEX_KEY_FILE
        if not path.exists():
            _create_secret_file(path, secrets.token_urlsafe(32) + "\n")
        secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < 32:
        raise ImproperlyConfigured("The blind index key must be at least 32 characters long.")
    key = hashlib.sha256(b"concilia blind index\0" + secret.encode()).digest()
    with _cache.lock:
        _cache.index_key = key
    return key


def normalise(value: str) -> str:
    """What makes two spellings of one value the same: Unicode form, outer spaces, case."""
    return unicodedata.normalize("NFC", value).strip().lower()


def blind_index(value: str, *, purpose: str = "value") -> str:
    """A keyed hash (HMAC-SHA256, 64 hex digits) of the normalised value: equal values give equal
    hashes, so a unique index and exact look-ups work, yet nobody without the key can test a
    guess. `purpose` keeps the hashes of different kinds of value apart."""
    message = purpose.encode() + b"\0" + normalise(value).encode("utf-8")
    return hmac.new(_index_key(), message, hashlib.sha256).hexdigest()


def word_indexes(text: str, *, purpose: str) -> list[str]:
    """The keyed hash of each word of `text` (letters and digits; hyphens, apostrophes and spaces
    part words), accents and case aside, 16 hex digits each, sorted, without repeats: "garcia"
    and "GARCÍA" give the same one. For finding a value by any of its
    words (a customer's surname) where the value itself is encrypted."""
    decomposed = unicodedata.normalize("NFKD", text).casefold()
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return sorted({blind_index(word, purpose=purpose)[:16] for word in re.findall(r"\w+", plain)})
