"""concilia.core.crypto: values and files encrypted and authenticated, keys kept in the home (never
in the database) or given by settings, and the keyed hash that finds an encrypted email."""

from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet
from django import forms
from django.core.exceptions import ImproperlyConfigured, ValidationError

from concilia.core import crypto


@pytest.fixture
def home(settings, tmp_path):
    """A fresh CONCILIA_HOME with no keys yet, and none in settings."""
    settings.HOME = tmp_path
    settings.ENCRYPTION_KEYS = []
    settings.BLIND_INDEX_KEY = ""
    return tmp_path


def test_text_and_bytes_round_trip_and_never_encrypt_the_same_way_twice(home):
    text = "María José Núñez <mj@example.com> ☎ +34 600 000 000"
    stored = crypto.encrypt_text(text)
    assert stored.startswith(f"enc1:{crypto.keyring().current}:") and "Núñez" not in stored
    assert crypto.decrypt_text(stored) == text
    assert crypto.encrypt_text(text) != stored  # a random IV each time
    data = bytes(range(256)) * 10
    sealed = crypto.encrypt_bytes(data)
    assert sealed.startswith(crypto.FILE_MAGIC) and data not in sealed
    assert crypto.decrypt_bytes(sealed) == data
    assert (
        crypto.plain_bytes(b"%PDF written before encryption") == b"%PDF written before encryption"
    )


def test_a_changed_value_or_a_missing_key_fails_loudly(home, settings):
    stored = crypto.encrypt_text("zoe@example.org")
    # one character of the token changed
    position = len(stored) - 10
    tampered = (
        stored[:position] + ("A" if stored[position] != "A" else "B") + stored[position + 1 :]
    )
    with pytest.raises(crypto.DecryptionError, match="changed or damaged"):
        crypto.decrypt_text(tampered)
    sealed = crypto.encrypt_bytes(b"invoice")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_bytes(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(crypto.DecryptionError, match="not encrypted"):
        crypto.decrypt_text("zoe@example.org")
    # Another deployment's keys do not open it, and the error names the key it needs
    old_id = crypto.keyring().current
    settings.ENCRYPTION_KEYS = [crypto.new_key()]
    with pytest.raises(crypto.DecryptionError, match=f"key {old_id}, which this deployment"):
        crypto.decrypt_text(stored)
    # A token of the right key id but made with another key (a forged id) is refused as well
    forged_key = Fernet.generate_key()
    forged = f"enc1:{crypto.keyring().current}:" + Fernet(forged_key).encrypt(b"x").decode()
    with pytest.raises(crypto.DecryptionError, match="changed or damaged"):
        crypto.decrypt_text(forged)


def test_keys_are_made_once_in_the_home_for_its_owner_only_and_never_shared(home):
    stored = crypto.encrypt_text("a value")
    folder = home / "keys"
    key_file, index_file = folder / crypto.KEY_FILE, folder / crypto.INDEX_KEY_FILE
    crypto.blind_index("zoe@example.org")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(index_file.stat().st_mode) == 0o600
    # The same keys on the next start
    crypto.forget_keys()
    assert crypto.decrypt_text(stored) == "a value"
    # The blind index has its own key, never the bytes of an encryption key
    (key,) = crypto.read_key_file(key_file)
    index_secret = index_file.read_text().strip()
    assert index_secret != key and index_secret not in key_file.read_text()


def test_keys_from_settings_the_first_encrypts_and_every_one_decrypts(home, settings):
    old, new = crypto.new_key(), crypto.new_key()
    settings.ENCRYPTION_KEYS = [old]
    written_before = crypto.encrypt_text("before the rotation")
    settings.ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt_text(written_before) == "before the rotation"
    assert crypto.stored_key_id(crypto.encrypt_text("after")) == crypto.key_id(new)
    assert crypto.keyring().source == "settings"
    assert not (home / "keys" / crypto.KEY_FILE).exists()  # nothing written to disk
    settings.ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="not a Fernet key"):
        crypto.encrypt_text("x")


def test_a_key_another_process_added_to_the_file_is_used_within_seconds(home, monkeypatch):
    old_value = crypto.encrypt_text("old")
    key_file = crypto.key_file()
    keys = crypto.read_key_file(key_file)
    # Another process (concilia keys rotate) puts a new key first and writes with it
    new = crypto.new_key()
    crypto.write_key_file(key_file, [new, *keys])
    from_other_process = (
        f"enc1:{crypto.key_id(new)}:" + Fernet(new.encode()).encrypt(b"new").decode()
    )
    # This process opens it at once (an unknown key id makes it read the file again)
    assert crypto.decrypt_text(from_other_process) == "new"
    assert crypto.decrypt_text(old_value) == "old"
    # and encrypts with it once it looks at the file again
    monkeypatch.setattr(crypto, "RECHECK_SECONDS", 0)
    assert crypto.stored_key_id(crypto.encrypt_text("x")) == crypto.key_id(new)


def test_the_blind_index_normalises_and_keeps_purposes_apart(home, settings):
    email = crypto.blind_index("Zoe@Example.org ", purpose="email")
    assert email == crypto.blind_index("zoe@example.org", purpose="email")
    assert len(email) == 64 and "zoe" not in email
    assert email != crypto.blind_index("zoe@example.org", purpose="name-word")
    assert crypto.word_indexes("Núñez-García  nuñez", purpose="w") == sorted(
        {
            crypto.blind_index("nunez", purpose="w")[:16],
            crypto.blind_index("garcia", purpose="w")[:16],
        }
    )
    # Another index key gives other hashes: without the key nobody can test a guess
    settings.BLIND_INDEX_KEY = "another-index-key-" + "z" * 30
    assert crypto.blind_index("zoe@example.org", purpose="email") != email
    settings.BLIND_INDEX_KEY = "short"
    with pytest.raises(ImproperlyConfigured):
        crypto.blind_index("x")


def test_an_encrypted_field_checks_the_plain_length_and_the_form_is_a_one_line_input(db):
    from concilia.customers.models import Customer

    customer = Customer(name="n" * 201, email="not an email", phone="1" * 41)
    with pytest.raises(ValidationError) as error:
        customer.full_clean()
    assert set(error.value.message_dict) == {"name", "email", "phone"}
    field = Customer._meta.get_field("name").formfield()
    assert isinstance(field, forms.CharField) and field.max_length == 200
    assert isinstance(field.widget, forms.TextInput)
    assert isinstance(Customer._meta.get_field("email").formfield(), forms.EmailField)
