"""The reviewer's form: what each customer message of a conversation should have been read as."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from concilia.cases.models import Kind
from concilia.cases.queries import active_categories
from concilia.nlu.classifier import DEFAULT_UNKNOWN_LABELS

OUT_OF_SCOPE = DEFAULT_UNKNOWN_LABELS[0]


def category_choices() -> list[tuple[str, str]]:
    return [
        ("", "—"),
        *((code, str(category.name)) for code, category in active_categories().items()),
        (OUT_OF_SCOPE, _("Out of scope (none of these)")),
    ]


class MessageLabelForm(forms.Form):
    """One customer message: left as it was read, or labelled with a category and/or a kind."""

    message = forms.IntegerField(widget=forms.HiddenInput)
    text = forms.CharField(
        label=_("Text to learn from"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        required=False,
        help_text=_("Cut what does not show the intent (names, addresses)."),
    )
    category = forms.ChoiceField(label=_("Category it should have been"), required=False)
    kind = forms.ChoiceField(
        label=_("Kind it should have been"),
        choices=[("", "—"), *Kind.choices],
        required=False,
    )
    slots = forms.CharField(
        label=_("Slots it gave"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
        required=False,
        help_text=_("One per line, as name: value (order_number: PED-123)."),
    )
    excluded = forms.BooleanField(label=_("Keep out of training"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = category_choices()

    def clean_slots(self) -> str:
        lines = [line.strip() for line in self.cleaned_data["slots"].splitlines() if line.strip()]
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon or not name.strip() or not value.strip():
                raise forms.ValidationError(
                    _("Write each slot as name: value (%(line)s is not).") % {"line": line}
                )
        return "\n".join(lines)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        labelled = data.get("category") or data.get("kind")
        if labelled and not (data.get("text") or "").strip():
            self.add_error("text", _("A label needs the text it labels."))
        if data.get("slots") and not labelled:
            self.add_error("slots", _("Give the category or the kind the slots go with."))
        return data


MessageLabelFormSet = forms.formset_factory(MessageLabelForm, extra=0, max_num=200)
