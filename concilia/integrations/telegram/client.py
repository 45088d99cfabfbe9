"""The Telegram Bot API methods the channel calls, with Telegram's answers turned into exceptions
that say what to do next: try later (down, or 429 with its retry_after), stop (the customer
blocked the bot), or give up on this one request (400).

The token is part of every URL (https://api.telegram.org/bot<token>/<method>), so no error
message or log line here ever includes a URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings

if TYPE_CHECKING:
    from concilia.integrations.telegram.models import TelegramBot

# Telegram's limit for one message's text is 4096 characters; a little less leaves room for
# characters that count twice.
MAX_TEXT = 4000


class TelegramError(Exception):
    """Telegram did not do what was asked."""

    def __init__(self, description: str, *, status: int = 0) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


class TelegramUnavailable(TelegramError):
    """Down, slow, unreachable, an answer that is not Telegram's, or our token refused: the same
    request may work later."""


class TelegramRateLimited(TelegramUnavailable):
    """429: Telegram says when to try again."""

    def __init__(self, description: str, *, retry_after: int) -> None:
        super().__init__(description, status=429)
        self.retry_after = retry_after


class TelegramBlocked(TelegramError):
    """403: the customer blocked the bot (or deleted the chat); sending again will not work."""


class TelegramRejected(TelegramError):
    """400 and the like: this request will never work as it is."""


class BotApi:
    """One bot's calls to the Bot API (JSON in, {"ok": true, "result": ...} out)."""

    def __init__(self, *, api_url: str, token: str, timeout: float | None = None) -> None:
        self._base = f"{api_url.rstrip('/')}"
        self._token = token
        self._client = httpx.Client(
            timeout=timeout if timeout is not None else settings.CONNECTOR_TIMEOUT,
            follow_redirects=False,
        )

    @classmethod
    def of(cls, bot: TelegramBot) -> BotApi:
        """The API of this bot, at its configured address."""
        return cls(api_url=bot.api_url, token=bot.api_token)

    def __enter__(self) -> BotApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(self, method: str, **params: Any) -> Any:
        """The method's result, or one of the TelegramError kinds."""
        url = f"{self._base}/bot{self._token}/{method}"
        try:
            response = self._client.post(url, json=params)
        except httpx.HTTPError as error:
            raise TelegramUnavailable(f"{method}: {type(error).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "ok" not in body:
            raise TelegramUnavailable(
                f"{method}: HTTP {response.status_code}, not a Bot API answer",
                status=response.status_code,
            )
        if body["ok"] is True:
            return body.get("result")
        status = body.get("error_code") or response.status_code
        description = f"{method}: {str(body.get('description') or '')[:200]}"
        parameters = body.get("parameters") or {}
        if status == 429:
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            seconds = retry_after if isinstance(retry_after, int) and retry_after > 0 else 1
            raise TelegramRateLimited(description, retry_after=seconds)
        if status == 403:
            raise TelegramBlocked(description, status=status)
        if status in (400, 404, 409):
            raise TelegramRejected(description, status=status)
        raise TelegramUnavailable(description, status=status)

    # -- the methods -----------------------------------------------------------------------

    def send_message(
        self, *, chat_id: int, text: str, keyboard: list[list[dict[str, str]]] | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if keyboard:
            params["reply_markup"] = {"inline_keyboard": keyboard}
        return self.call("sendMessage", **params)

    def answer_callback_query(self, *, callback_query_id: str, text: str = "") -> bool:
        params: dict[str, Any] = {"callback_query_id": callback_query_id}
        if text:
            params["text"] = text
        return bool(self.call("answerCallbackQuery", **params))

    def set_webhook(self, *, url: str, secret_token: str, allowed_updates: list[str]) -> bool:
        return bool(
            self.call(
                "setWebhook", url=url, secret_token=secret_token, allowed_updates=allowed_updates
            )
        )

    def get_file(self, *, file_id: str) -> dict[str, Any]:
        result = self.call("getFile", file_id=file_id)
        if not isinstance(result, dict) or not result.get("file_path"):
            raise TelegramRejected("getFile: the file cannot be downloaded")
        return result

    def download(self, *, file_path: str, limit: int) -> bytes:
        """The file's bytes, at most `limit` + 1 (enough to know it is too large)."""
        url = f"{self._base}/file/bot{self._token}/{file_path.lstrip('/')}"
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    error = TelegramUnavailable if response.status_code >= 500 else TelegramRejected
                    raise error(f"file download: HTTP {response.status_code}")
                content = b""
                for chunk in response.iter_bytes():
                    content += chunk
                    if len(content) > limit:
                        break
                return content[: limit + 1]
        except httpx.HTTPError as error:
            raise TelegramUnavailable(f"file download: {type(error).__name__}") from None
