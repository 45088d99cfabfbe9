"""The administrators' side of Telegram: bots (the token written once and kept encrypted, the
webhook registered with Telegram from the list) and the chats, with who blocked the bot."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from concilia.integrations.telegram import actions
from concilia.integrations.telegram.client import TelegramError
from concilia.integrations.telegram.models import TOKEN_PATTERN, TelegramBot, TelegramChat


class TelegramBotForm(forms.ModelForm):
    token = forms.CharField(
        label=gettext_lazy("Bot token"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=gettext_lazy(
            "The token @BotFather gave you. It is stored encrypted and never shown again; leave "
            "it empty to keep the current one."
        ),
    )

    class Meta:
        model = TelegramBot
        fields = ("name", "code", "token", "api_url", "language", "active")

    def clean_token(self) -> str:
        token = self.cleaned_data.get("token", "")
        if token and not TOKEN_PATTERN.match(token):
            raise forms.ValidationError(
                _("This is not a bot token; it looks like 123456789:AAH… (from @BotFather).")
            )
        if not token and not self.instance.api_token:
            raise forms.ValidationError(_("A new bot needs its token."))
        return token


@admin.register(TelegramBot)
class TelegramBotAdmin(admin.ModelAdmin):
    form = TelegramBotForm
    list_display = ("name", "code", "bot_id", "active", "webhook_url", "webhook_registered_at")
    list_filter = ("active",)
    readonly_fields = ("bot_id", "webhook_address", "webhook_url", "webhook_registered_at")
    actions = ("register",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["name", "code", "token", "api_url", "language", "active"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    @admin.display(description=gettext_lazy("Webhook address to register"))
    def webhook_address(self, bot: TelegramBot) -> str:
        return bot.webhook_address()

    def save_model(self, request: HttpRequest, obj: TelegramBot, form: Any, change: bool) -> None:
        actions.save_bot(bot=obj, token=form.cleaned_data.get("token", ""))

    @admin.action(description=gettext_lazy("Register the webhook with Telegram"))
    def register(self, request: HttpRequest, queryset: QuerySet[TelegramBot]) -> None:
        for bot in queryset:
            try:
                address = actions.register_webhook(bot=bot)
            except TelegramError as error:
                self.message_user(
                    request,
                    _("Telegram refused the webhook of %(bot)s: %(reason)s")
                    % {"bot": bot, "reason": error.description},
                    messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    _("%(bot)s now sends its updates to %(address)s.")
                    % {"bot": bot, "address": address},
                    messages.SUCCESS,
                )


@admin.register(TelegramChat)
class TelegramChatAdmin(admin.ModelAdmin):
    list_display = ("__str__", "bot", "created_at", "blocked_at", "last_error")
    list_filter = ("bot", "blocked_at")
    readonly_fields = ("bot", "created_at", "blocked_at", "last_error")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
