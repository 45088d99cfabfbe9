"""Model fields whose values are encrypted in the database (concilia.core.crypto), and the keyed
hash column that lets one of them still be looked up.

    class Customer(models.Model):
        name = EncryptedCharField(_("name"), max_length=200)
        email = EncryptedEmailField(_("email"))
        # Filled from `email` on every save that writes it; the model's save adds it to
        # update_fields (with_blind_indexes).
        email_index = BlindIndexField(source="email", purpose="email", unique=True)
        name_words = WordIndexField(source="name", purpose="name-word")

        def save(self, *args, update_fields=None, **kwargs):
            super().save(*args, update_fields=with_blind_indexes(Customer, update_fields), **kwargs)

The column of an encrypted field is text whatever the plain length (a token is longer than its
text); `max_length` is the plain text's limit, checked by the model's and the form's validation.
The database sees only tokens, so nothing but `isnull` can be asked of the column: every other
lookup (=, icontains, startswith, in…) raises FieldError: exact matches go through the blind
index (`email_index=blind_index(email, purpose="email")`), whole words through a word index
(`words_match`). Both are written by save() and bulk_create(), never by QuerySet.update() or
bulk_update(): change an indexed value with save(). Ordering by an encrypted column sorts
tokens, meaningless: sort in Python. "" is stored as "" (an empty value has nothing to hide) and
None as NULL. A value without the enc1: prefix is legacy plain text, read as it is until the
migration that brought the field encrypts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.core import validators
from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact, In

from concilia.core import crypto

ALLOWED_LOOKUPS = frozenset({"isnull"})


class EncryptedMixin:
    """Encrypts on the way to the database and decrypts on the way back."""

    encrypted = True

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "" or not crypto.is_encrypted(value):
            return value  # nothing, or plain text from before the field was encrypted
        return crypto.decrypt_text(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)  # type: ignore[misc]
        if value is None or value == "":
            return value
        return crypto.encrypt_text(str(value))

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name not in ALLOWED_LOOKUPS:
            model = getattr(self, "model", None)
            where = f"{model.__name__}.{self.name}" if model else self.name  # type: ignore[attr-defined]
            raise FieldError(
                f"{where} is stored encrypted: the database cannot compare it ('{lookup_name}' "
                "lookup). Look it up through its blind index, or filter in Python."
            )
        return super().get_lookup(lookup_name)  # type: ignore[misc]

    def get_transform(self, lookup_name: str) -> Any:
        return None  # no lower(), no __0: transforms would compare tokens too


class EncryptedTextField(EncryptedMixin, models.TextField):
    """Free text, encrypted."""


class EncryptedCharField(EncryptedMixin, models.TextField):
    """A short text, encrypted: a one-line input limited to `max_length` characters of plain
    text (the column itself is text)."""

    def __init__(self, *args: Any, max_length: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, max_length=max_length, **kwargs)

    @property
    def validators(self) -> list[Callable[..., Any]]:
        extra = [validators.MaxLengthValidator(self.max_length)] if self.max_length else []
        return [*super().validators, *extra]

    def formfield(self, **kwargs: Any) -> Any:
        # TextField's would be a textarea; a CharField with the same max_length checks the limit.
        defaults = {
            "form_class": forms.CharField,
            "max_length": self.max_length,
            "widget": forms.TextInput,
        }
        return super().formfield(**{**defaults, **kwargs})


class EncryptedEmailField(EncryptedCharField):
    """An email address, encrypted; validated as EmailField is."""

    default_validators = [validators.validate_email]

    def __init__(self, *args: Any, max_length: int = 254, **kwargs: Any) -> None:
        super().__init__(*args, max_length=max_length, **kwargs)

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": forms.EmailField, "widget": None, **kwargs})


class _DerivedIndex:
    """A column computed from another field's value on every save that writes it."""

    def __init__(self, *args: Any, source: str, purpose: str, **kwargs: Any) -> None:
        self.source = source
        self.purpose = purpose
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()  # type: ignore[misc]
        kwargs.pop("editable", None)
        return name, path, args, {**kwargs, "source": self.source, "purpose": self.purpose}

    def index_of(self, value: str | None) -> str | None:
        raise NotImplementedError

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = self.index_of(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)  # type: ignore[attr-defined]
        return value


class AnyIndexKeyExact(Exact):
    """`= hash`, or, while an index key rotation recomputes the stored hashes, `IN` the value's
    hash under every index key in force (crypto.IndexHash.alternatives): a row not recomputed
    yet is still found."""

    def __init__(self, lhs: Any, rhs: Any) -> None:
        self.alternatives = tuple(getattr(rhs, "alternatives", ()))
        if isinstance(rhs, crypto.IndexHash):
            rhs = str(rhs)  # the plain string for the database driver
        super().__init__(lhs, rhs)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        if len(self.alternatives) > 1:
            return In(self.lhs, list(self.alternatives)).as_sql(compiler, connection)
        return super().as_sql(compiler, connection)


class BlindIndexField(_DerivedIndex, models.CharField):
    """The keyed hash of another field's value (crypto.blind_index): what exact look-ups and
    unique constraints use in place of the encrypted value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        super().__init__(*args, **kwargs)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "exact":
            return AnyIndexKeyExact
        return super().get_lookup(lookup_name)

    def index_of(self, value: str | None) -> str | None:
        if value is None:
            return None if self.null else ""
        return str(crypto.blind_index(value, purpose=self.purpose))


class WordIndexField(_DerivedIndex, models.TextField):
    """The keyed hash of each word of another field's value (crypto.word_indexes), between
    spaces with one at each end, so that `words_match` finds a value by whole words."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def index_of(self, value: str | None) -> str:
        hashes = crypto.word_indexes(value or "", purpose=self.purpose)
        return f" {' '.join(hashes)} " if hashes else ""


def words_match(field: WordIndexField, text: str, *, path: str | None = None) -> models.Q:
    """Rows whose indexed value has every word of `text` (a Q on `path`, by default the field's
    own name; "customer__name_words" from a related model). A text without words matches none.
    During an index key rotation, a row matches under either key (each row's words were all
    written with one)."""
    lookup = f"{path or field.name}__contains"
    either: models.Q | None = None
    for hashes in crypto.word_indexes_by_key(text, purpose=field.purpose):
        if not hashes:
            return models.Q(pk__in=[])
        condition = models.Q()
        for word in hashes:
            condition &= models.Q(**{lookup: f" {word} "})
        either = condition if either is None else either | condition
    return either or models.Q(pk__in=[])


def with_blind_indexes(
    model: type[models.Model], update_fields: Iterable[str] | None
) -> list[str] | None:
    """`update_fields` plus the blind indexes of the fields it names, so that a save of `email`
    alone also writes `email_index` (call it from the model's save)."""
    if update_fields is None:
        return None
    names = list(update_fields)
    for field in model._meta.concrete_fields:
        if isinstance(field, _DerivedIndex) and field.source in names and field.name not in names:
            names.append(field.name)
    return names
