"""A fake Telegram Bot API (core.telegram.org/bots/api) for one bot: sendMessage with inline
keyboards, answerCallbackQuery, getFile and the file download path /file/bot<token>/<path>,
setWebhook, getMe; the answers {"ok": true, "result": ...} and the errors {"ok": false,
"error_code": ..., "description": ...}, 429 with parameters.retry_after.

It also plays the customers' side: it builds the Update objects Telegram would post to the
webhook (a text, a photo, a document, a button pressed) from what it sent them.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any
from urllib.parse import urlsplit

from concilia.integrations.tests.fakes import Answer, FakeServer, Received

TOKEN = "123456789:AAHfakeTokenForTestsOnly-abcdefghijklmn"
BOT_ID = 123456789
_METHOD = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")
_FILE = re.compile(r"^/file/bot(?P<token>[^/]+)/(?P<path>.+)$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def error(code: int, description: str, **parameters: Any) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Answer(code, body)


def ok(result: Any) -> Answer:
    return Answer(200, {"ok": True, "result": result})


class FakeTelegram(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.token = TOKEN
        # chat id -> the messages the bot sent there, as Telegram keeps them.
        self.chats: dict[int, list[dict[str, Any]]] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.webhook: dict[str, Any] = {}
        self.answered: list[dict[str, Any]] = []
        self.blocked: set[int] = set()
        # Answers to give instead of the real one, per method, first in first out.
        self.failures: dict[str, list[Answer]] = {}
        self._query_ids: set[str] = set()
        self._ids = itertools.count(1)
        self._updates = itertools.count(800000001)
        self._serve_files()

    def _serve_files(self) -> None:
        """The download path answers with the file's bytes, not JSON."""
        fake = self
        base = self._server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:
                match = _FILE.match(urlsplit(self.path).path)
                if match is None:
                    return self._serve()
                fake.received.append(
                    Received("GET", urlsplit(self.path).path, {}, dict(self.headers), None)
                )
                found = [c for p, c in fake.files.values() if p == match["path"]]
                if match["token"] != fake.token or not found:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(found[0])))
                self.end_headers()
                self.wfile.write(found[0])
                return None

        self._server.RequestHandlerClass = Handler

    # -- the Bot API -------------------------------------------------------------------------

    def answer(self, request: Received) -> Answer:
        match = _METHOD.match(request.path)
        if match is None:
            return error(404, "Not Found")
        if match["token"] != self.token:
            return error(401, "Unauthorized")
        method = match["method"]
        queued = self.failures.get(method)
        if queued:
            return queued.pop(0)
        params = request.body if isinstance(request.body, dict) else dict(request.query)
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return error(404, "Not Found")
        return handler(params)

    def _getMe(self, params: dict[str, Any]) -> Answer:
        return ok({"id": BOT_ID, "is_bot": True, "first_name": "Concilia", "username": "c_bot"})

    def _setWebhook(self, params: dict[str, Any]) -> Answer:
        url = str(params.get("url") or "")
        if not url.startswith("https://"):
            return error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.match(str(secret)):
            return error(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = dict(params)
        return ok(True)

    def _sendMessage(self, params: dict[str, Any]) -> Answer:
        chat_id = params.get("chat_id")
        text = str(params.get("text") or "")
        if not isinstance(chat_id, int):
            return error(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            return error(403, "Forbidden: bot was blocked by the user")
        if not text.strip():
            return error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return error(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if markup is not None:
            rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                return error(400, "Bad Request: can't parse reply keyboard markup JSON object")
            for button in (b for row in rows for b in row):
                data = str(button.get("callback_data") or "")
                if not button.get("text") or not 1 <= len(data.encode()) <= 64:
                    return error(400, "Bad Request: BUTTON_DATA_INVALID")
        message = {
            "message_id": next(self._ids),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Concilia"},
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
            "text": text,
        }
        if markup is not None:
            message["reply_markup"] = markup
        self.chats.setdefault(chat_id, []).append(message)
        return ok(message)

    def _answerCallbackQuery(self, params: dict[str, Any]) -> Answer:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._query_ids:
            return error(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._query_ids.discard(query_id)
        self.answered.append(dict(params))
        return ok(True)

    def _getFile(self, params: dict[str, Any]) -> Answer:
        file_id = str(params.get("file_id") or "")
        if file_id not in self.files:
            return error(400, "Bad Request: invalid file_id")
        path, content = self.files[file_id]
        unique = file_id.removeprefix("file-")
        return ok(
            {
                "file_id": file_id,
                "file_unique_id": unique,
                "file_size": len(content),
                "file_path": path,
            }
        )

    # -- the customer's side -----------------------------------------------------------------

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        return list(self.chats.get(chat_id, []))

    def texts(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.chats.get(chat_id, [])]

    def buttons(self, chat_id: int) -> list[str]:
        """The labels of the keyboard on the last message sent to the chat."""
        last = self.chats.get(chat_id, [])[-1:]
        rows = last[0].get("reply_markup", {}).get("inline_keyboard", []) if last else []
        return [button["text"] for row in rows for button in row]

    def _person(self, chat_id: int, language: str) -> dict[str, Any]:
        return {"id": chat_id, "is_bot": False, "first_name": "Lucy", "language_code": language}

    def _update(self, **content: Any) -> dict[str, Any]:
        return {"update_id": next(self._updates), **content}

    def _message(self, chat_id: int, language: str, **content: Any) -> dict[str, Any]:
        return self._update(
            message={
                "message_id": next(self._ids),
                "from": self._person(chat_id, language),
                "chat": {"id": chat_id, "type": "private", "first_name": "Lucy"},
                "date": int(time.time()),
                **content,
            }
        )

    def text_update(self, chat_id: int, text: str, language: str = "en") -> dict[str, Any]:
        entities = (
            [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
            if text.startswith("/")
            else []
        )
        return self._message(chat_id, language, text=text, entities=entities)

    def _file(self, path: str, content: bytes) -> dict[str, Any]:
        number = next(self._ids)
        file_id = f"file-{number}"
        self.files[file_id] = (path, content)
        return {"file_id": file_id, "file_unique_id": str(number), "file_size": len(content)}

    def photo_update(self, chat_id: int, content: bytes, language: str = "en") -> dict[str, Any]:
        """A photo: Telegram offers it in sizes; the largest is the one sent."""
        number = next(self._ids)
        small = self._file(f"photos/file_{number}_s.jpg", content[: len(content) // 2 or 1])
        large = self._file(f"photos/file_{number}.jpg", content)
        sizes = [{**small, "width": 90, "height": 60}, {**large, "width": 800, "height": 600}]
        return self._message(chat_id, language, photo=sizes)

    def document_update(
        self, chat_id: int, name: str, content: bytes, mime: str, language: str = "en"
    ) -> dict[str, Any]:
        document = {**self._file(f"documents/{name}", content), "file_name": name}
        return self._message(chat_id, language, document={**document, "mime_type": mime})

    def press(self, chat_id: int, label: str, language: str = "en") -> dict[str, Any]:
        """The customer presses the button with this label on the last keyboard sent."""
        for message in reversed(self.chats.get(chat_id, [])):
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            buttons = {b["text"]: b["callback_data"] for row in rows for b in row}
            if buttons:
                break
        else:
            raise AssertionError(f"no keyboard was sent to {chat_id}")
        assert label in buttons, f"{label!r} not among {list(buttons)}"
        query_id = str(next(self._ids) * 7919)
        self._query_ids.add(query_id)
        return self._update(
            callback_query={
                "id": query_id,
                "from": self._person(chat_id, language),
                "message": message,
                "chat_instance": str(chat_id * 3),
                "data": buttons[label],
            }
        )

    def blocked_update(self, chat_id: int, status: str = "kicked") -> dict[str, Any]:
        self.blocked.add(chat_id) if status == "kicked" else self.blocked.discard(chat_id)
        return self._update(
            my_chat_member={
                "chat": {"id": chat_id, "type": "private"},
                "from": self._person(chat_id, "en"),
                "date": int(time.time()),
                "old_chat_member": {"status": "member", "user": {"id": BOT_ID, "is_bot": True}},
                "new_chat_member": {"status": status, "user": {"id": BOT_ID, "is_bot": True}},
            }
        )
