"""A JSON value encrypted at rest (concilia.core.crypto): the dialogue's memory, the NLU's
reading of a message, a hand-over's snapshot, a Telegram update; and `filled`, the test for a
non-empty encrypted column.

The value is serialised to JSON, then encrypted as text: the column is text holding a token, so
nothing inside it can be asked of the database (`state__step=...` raises FieldError, as every
lookup but `isnull` does on concilia.core.fields' encrypted fields): filter in Python. An empty
container ({}, [], "") is stored as "" (nothing to hide, and the key rotation skips it) and read
back as the field's default; None is NULL. A value without the enc1: prefix is legacy plain JSON,
read as it is until the migration that brought the field encrypts it.

It sits beside concilia.core.fields (which may take it in) so that every app can use it.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThan

from concilia.core import crypto
from concilia.core.fields import EncryptedMixin

EMPTY: tuple[Any, ...] = ({}, [], "")


def is_empty(value: Any) -> bool:
    """An empty dict, list or string (not 0 or False, which are values)."""
    return any(value == empty and type(value) is type(empty) for empty in EMPTY)


class EncryptedJSONField(EncryptedMixin, models.TextField):
    """A JSON-serialisable value, encrypted; reads back as the Python object."""

    def __init__(
        self,
        *args: Any,
        encoder: type[json.JSONEncoder] | None = None,
        **kwargs: Any,
    ) -> None:
        self.encoder = encoder
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.encoder is not None:
            kwargs["encoder"] = self.encoder
        return name, path, args, kwargs

    def _empty(self) -> Any:
        return self.get_default() if self.has_default() else {}

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        if value == "":
            return self._empty()
        return json.loads(crypto.decrypt_text(value) if crypto.is_encrypted(value) else value)

    def to_python(self, value: Any) -> Any:
        return value  # already the Python object (forms.JSONField parses text)

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if is_empty(value):
            return ""
        return crypto.encrypt_text(json.dumps(value, cls=self.encoder))

    def value_to_string(self, obj: models.Model) -> Any:
        return self.value_from_object(obj)

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(
            **{"form_class": forms.JSONField, "encoder": self.encoder, **kwargs}
        )


def filled(*names: str) -> Q:
    """Rows where any of the encrypted columns `names` holds something: "" is stored for an empty
    value, so the length of the stored text tells, where comparing the value cannot."""
    condition = Q(pk__in=[])
    for name in names:
        condition |= Q(GreaterThan(Length(name), 0))
    return condition
