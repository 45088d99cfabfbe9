"""The webhook Telegram posts a bot's updates to: it checks the secret token, keeps the update
once per update_id, and answers at once; the work is a background job."""

from __future__ import annotations

import json
import secrets

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pydantic import ValidationError

from concilia.integrations.telegram import actions
from concilia.integrations.telegram.models import TelegramBot
from concilia.integrations.telegram.schemas import Update

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret


def _refuse(status: int, description: str) -> JsonResponse:
    return JsonResponse({"ok": False, "description": description}, status=status)


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, code: str) -> JsonResponse:
    bot = TelegramBot.objects.filter(code=code, active=True).first()
    if bot is None:
        return _refuse(404, _("No such bot."))
    given = request.headers.get(SECRET_HEADER, "")
    if not secrets.compare_digest(given.encode(), bot.webhook_secret.encode()):
        return _refuse(403, _("The secret token does not match."))
    try:
        payload = json.loads(request.body)
        update = Update.model_validate(payload)
    except (ValueError, ValidationError):
        return _refuse(400, _("The body is not a Telegram update."))
    new = actions.receive_update(bot=bot, update=update, payload=payload)
    return JsonResponse({"ok": True, "duplicate": not new})
