"""ASGI entry point: what `concilia serve` runs (granian, ASGI interface).

Under ASGI Django reads a request's whole body before a thread runs the view, so clients that
send their bodies slowly hold no web process (under WSGI each one held a process's only thread
until the body arrived; granian has no body read timeout)."""

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "concilia.settings")
# Each request runs in a thread of its own here: a PostgreSQL connection kept for the next request
# stayed with a finished thread, one more per request until the server refused clients
# ("too many clients already", bench/soak.py). Django's advice under ASGI: no persistent ones.
os.environ["CONCILIA_DB_CONN_MAX_AGE"] = "0"
django_application = get_asgi_application()

from django.utils import translation  # noqa: E402 - once Django is set up
from django.utils.translation.trans_real import parse_accept_lang_header  # noqa: E402


def _cut_short(headers: list[tuple[bytes, bytes]]) -> bytes:
    """A body cut short (the client closed before sending what its Content-Length announced):
    Django stops without answering, and the server would make that a 500. Say so instead, in
    the client's language."""
    accept = dict(headers).get(b"accept-language", b"").decode("latin-1")
    wanted = [code for code, _quality in parse_accept_lang_header(accept)]
    language = next((c[:2] for c in wanted if c[:2] in ("es", "en")), "es")
    with translation.override(language):
        text = translation.gettext(
            "Bad request: the request body ended before the length it announced."
        )
    return f"{text}\n".encode()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    started = False

    async def send_tracked(message: dict[str, Any]) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    await django_application(scope, receive, send_tracked)
    if scope["type"] == "http" and not started:
        body = _cut_short(scope.get("headers", []))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        except OSError:  # the client is gone: nobody to tell
            pass
