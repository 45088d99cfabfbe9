"""Encryption at rest: the deployment's keys, authenticated encryption of text and bytes, and the
keyed hash (blind index) that lets an encrypted email still be looked up.

Keys (docs/encryption.md):

- Encryption: Fernet keys (AES-128-CBC with HMAC-SHA256, from the `cryptography` package), from
  settings.ENCRYPTION_KEYS (CONCILIA_ENCRYPTION_KEYS, comma-separated) or else one per line in
  HOME/keys/encryption.keys, created on first use with mode 0600. The first key encrypts; every
  key decrypts, so a value written before a rotation still opens.
- Blind index: one HMAC-SHA256 key of its own (never the bytes of an encryption key), from
  settings.BLIND_INDEX_KEY (CONCILIA_BLIND_INDEX_KEY) or else HOME/keys/blind_index.key (one
  key a line: the first writes; a second one only while `concilia keys rotate-index` recomputes
  the indexes, during which look-ups accept a hash under either).

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
        self.index_key: tuple[bytes, ...] | None = None
        self.index_stamp: float | None = None
        self.index_checked = 0.0
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


class IndexHash(str):
    """A blind index as written now (the current index key), which also knows what the same value
    gave under every other index key in force (`alternatives`, the current first): while an index
    key rotation recomputes the stored indexes, a look-up must accept either (BlindIndexField's
    exact lookup does). Compares and hashes as the plain string."""

    alternatives: tuple[str, ...]

    def __new__(cls, value: str, alternatives: tuple[str, ...] = ()) -> IndexHash:
        made = super().__new__(cls, value)
        made.alternatives = alternatives or (value,)
        return made


def _read_index_secrets() -> tuple[list[str], str]:
    configured = getattr(settings, "BLIND_INDEX_KEY", "") or ""
    if configured:
        return [configured], "settings"
    path = key_folder() / INDEX_KEY_FILE
    if not path.exists():
        _create_secret_file(path, secrets.token_urlsafe(32) + "\n")
    return read_key_file(path), str(path)


def index_key_file() -> Path | None:
    """The index key file in use, or None when the key comes from settings (the environment)."""
    return None if getattr(settings, "BLIND_INDEX_KEY", "") else key_folder() / INDEX_KEY_FILE


def _derive_index_key(secret: str) -> bytes:
    if len(secret) < 32:
        raise ImproperlyConfigured("The blind index key must be at least 32 characters long.")
    return hashlib.sha256(b"concilia blind index\0" + secret.encode()).digest()


def _index_file_stamp() -> float | None:
    path = index_key_file()
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except FileNotFoundError:
        return None


def index_keys(*, recheck: bool = False) -> tuple[bytes, ...]:
    """The blind index keys in force, the current (which writes) first. More than one only while
    `concilia keys rotate-index` recomputes the indexes: the file is read again when it changes
    (another process rotated), as the encryption keys are."""
    now = time.monotonic()
    with _cache.lock:
        keys = _cache.index_key
        if keys is not None and (recheck or now - _cache.index_checked > RECHECK_SECONDS):
            _cache.index_checked = now
            if _index_file_stamp() != _cache.index_stamp:
                keys = None
        if keys is not None:
            return keys  # type: ignore[return-value]
    secrets_in_force, source = _read_index_secrets()
    if not secrets_in_force:
        raise ImproperlyConfigured(f"No blind index key in {source}.")
    keys = tuple(dict.fromkeys(_derive_index_key(secret) for secret in secrets_in_force))
    with _cache.lock:
        _cache.index_key = keys  # type: ignore[assignment]
        _cache.index_stamp = _index_file_stamp()
        _cache.index_checked = now
    return keys


def index_key_ids() -> tuple[str, ...]:
    """Public names of the blind index keys in force (keyed hashes of them), the current first."""
    return tuple(key_id(key) for key in index_keys())


def _index_key() -> bytes:
    return index_keys()[0]


def normalise(value: str) -> str:
    """What makes two spellings of one value the same: Unicode form, outer spaces, case."""
    return unicodedata.normalize("NFC", value).strip().lower()


def _blind_index_with(key: bytes, value: str, purpose: str) -> str:
    message = purpose.encode() + b"\0" + normalise(value).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def blind_index(value: str, *, purpose: str = "value") -> IndexHash:
    """A keyed hash (HMAC-SHA256, 64 hex digits) of the normalised value: equal values give equal
    hashes, so a unique index and exact look-ups work, yet nobody without the key can test a
    guess. `purpose` keeps the hashes of different kinds of value apart. During an index key
    rotation the result also carries the hashes under the other keys (IndexHash.alternatives)."""
    hashes = tuple(_blind_index_with(key, value, purpose) for key in index_keys())
    return IndexHash(hashes[0], hashes)


def _words_of(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text).casefold()
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.findall(r"\w+", plain)


def word_indexes(text: str, *, purpose: str) -> list[str]:
    """The keyed hash of each word of `text` (letters and digits; hyphens, apostrophes and spaces
    part words), accents and case aside, 16 hex digits each, sorted, without repeats: "garcia"
    and "GARCÍA" give the same one. For finding a value by any of its
    words (a customer's surname) where the value itself is encrypted."""
    return word_indexes_by_key(text, purpose=purpose)[0]


def word_indexes_by_key(text: str, *, purpose: str) -> list[list[str]]:
    """word_indexes under each index key in force, the current first (one list but during an
    index key rotation)."""
    words = _words_of(text)
    return [
        sorted({_blind_index_with(key, word, purpose)[:16] for word in words})
        for key in index_keys()
    ]


# -- text grams (the blind substring index) --------------------------------------------------

GRAM_LENGTH = 3


def fold_text(text: str) -> str:
    """Text as substring search compares it: case folded for every alphabet ("ß" is "ss", "Ñ" is
    "ñ"), one Unicode form; accents stay."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def grams(folded: str) -> set[str]:
    """The distinct substrings of GRAM_LENGTH characters of an already folded text."""
    return {folded[i : i + GRAM_LENGTH] for i in range(len(folded) - GRAM_LENGTH + 1)}


def gram_hashes(pieces: set[str], *, purpose: str, key: bytes | None = None) -> set[int]:
    """The keyed hash of each gram (HMAC-SHA256 with the index key, `purpose` first, cut to a
    signed 64-bit integer for a BIGINT column). Nobody without the key can tell which gram a
    hash stands for; equal grams give equal hashes, which is what lets them be looked up."""
    base = hmac.new(key or _index_key(), purpose.encode() + b"\0", hashlib.sha256)
    found = set()
    for piece in pieces:
        digest = base.copy()
        digest.update(piece.encode("utf-8"))
        found.add(int.from_bytes(digest.digest()[:8], "big", signed=True))
    return found
